package main

import (
	"net/http"
	"net/http/pprof"
)

// registerPprof adds the Go runtime's profiles under /debug/pprof/ to mux
// (catalogd serve --pprof). The package's own registration on
// http.DefaultServeMux is not used: only this mux, on the metrics
// listener, serves them.
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
