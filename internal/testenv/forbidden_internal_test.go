package testenv

import (
	"net/http"
	"slices"
	"testing"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestForbiddenRecorder(t *testing.T) {
	rec := &forbiddenRecorder{next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		code := http.StatusOK
		if r.Method == http.MethodPatch {
			code = http.StatusForbidden
		}
		return &http.Response{StatusCode: code, Body: http.NoBody}, nil
	})}
	for _, m := range []string{http.MethodGet, http.MethodPatch, http.MethodGet} {
		req, _ := http.NewRequest(m, "https://127.0.0.1/apis/operators.ferry.dev/v1alpha1/namespaces/a/subscriptions/b/status", nil)
		resp, err := rec.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := []string{"PATCH /apis/operators.ferry.dev/v1alpha1/namespaces/a/subscriptions/b/status"}
	if got := rec.list(); !slices.Equal(got, want) {
		t.Errorf("recorded %q, want %q", got, want)
	}
	for range maxRecorded + 5 {
		req, _ := http.NewRequest(http.MethodPatch, "https://127.0.0.1/x", nil)
		resp, err := rec.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := len(rec.list()); n != maxRecorded {
		t.Errorf("%d recorded, want the bound %d", n, maxRecorded)
	}
}
