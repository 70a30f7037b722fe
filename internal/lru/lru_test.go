package lru

import "testing"

func TestCache(t *testing.T) {
	tests := []struct {
		name     string
		puts     []int64 // sizes of keys 0, 1, 2, ...
		touch    []int   // keys read after the puts
		then     int64   // size of one more key put last
		wantGone []int
		wantKept []int
	}{
		{name: "within budget", puts: []int64{20, 20}, wantKept: []int{0, 1}},
		{name: "least recently used goes first", puts: []int64{20, 20, 20, 20}, touch: []int{0}, then: 25, wantGone: []int{1}, wantKept: []int{0, 2, 3}},
		{name: "a value over a quarter of the budget is not kept", puts: []int64{20}, then: 26, wantKept: []int{0}, wantGone: []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New[int, string](100)
			for k, size := range tc.puts {
				c.Put(k, "v", size)
			}
			for _, k := range tc.touch {
				c.Get(k)
			}
			if tc.then > 0 {
				c.Put(len(tc.puts), "v", tc.then)
			}
			for _, k := range tc.wantGone {
				if _, ok := c.Get(k); ok {
					t.Errorf("key %d kept", k)
				}
			}
			for _, k := range tc.wantKept {
				if _, ok := c.Get(k); !ok {
					t.Errorf("key %d evicted", k)
				}
			}
			if c.Used() > 100 {
				t.Errorf("used %d over budget", c.Used())
			}
		})
	}
}

func TestReplace(t *testing.T) {
	c := New[string, int](100)
	c.Put("a", 1, 10)
	c.Put("a", 2, 20)
	if v, _ := c.Get("a"); v != 2 || c.Used() != 20 || c.Len() != 1 {
		t.Fatalf("after replace: value %d, used %d, len %d", v, c.Used(), c.Len())
	}
}

func TestPurge(t *testing.T) {
	c := New[string, int](100)
	c.Put("a", 1, 10)
	c.Put("b", 2, 20)
	c.Purge()
	if _, ok := c.Get("a"); ok || c.Used() != 0 || c.Len() != 0 {
		t.Fatalf("after purge: used %d, len %d", c.Used(), c.Len())
	}
	c.Put("c", 3, 20)
	if v, ok := c.Get("c"); !ok || v != 3 || c.Used() != 20 {
		t.Fatalf("put after purge: value %d (%t), used %d", v, ok, c.Used())
	}
}
