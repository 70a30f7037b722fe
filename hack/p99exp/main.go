package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"

	"github.com/ferrydev/ferry/proto/api"
)

type rawMsg struct{ n int }
type raw struct{}

func (raw) Marshal(v any) (mem.BufferSlice, error) { return encoding.GetCodecV2("proto").Marshal(v) }
func (raw) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*rawMsg).n = data.Len()
	return nil
}
func (raw) Name() string { return "proto" }

func main() {
	addr := os.Args[1]
	ctx := context.Background()
	cc, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	cl := api.NewRegistryClient(cc)
	s, _ := cl.ListPackages(ctx, &api.ListPackageRequest{})
	type ch struct{ p, c, h string }
	var chans []ch
	for {
		n, err := s.Recv()
		if err != nil {
			break
		}
		pk, _ := cl.GetPackage(ctx, &api.GetPackageRequest{Name: n.GetName()})
		for _, c := range pk.GetChannels() {
			chans = append(chans, ch{n.GetName(), c.GetName(), c.GetCsvName()})
		}
	}
	type rec struct {
		d time.Duration
		n int
	}
	for rep := 0; rep < 3; rep++ {
		var recs []rec
		for r := 0; r < 2; r++ {
			for _, c := range chans {
				var m rawMsg
				st := time.Now()
				if err := cc.Invoke(ctx, api.Registry_GetBundle_FullMethodName, &api.GetBundleRequest{PkgName: c.p, ChannelName: c.c, CsvName: c.h}, &m, grpc.ForceCodecV2(raw{})); err != nil {
					panic(err)
				}
				recs = append(recs, rec{time.Since(st), m.n})
			}
		}
		sort.Slice(recs, func(i, j int) bool { return recs[i].d > recs[j].d })
		fmt.Printf("p99 %v:", recs[len(recs)/100].d)
		for _, r := range recs[:14] {
			fmt.Printf(" %.2fms/%.1fMB", float64(r.d.Microseconds())/1000, float64(r.n)/1e6)
		}
		fmt.Println()
	}
}
