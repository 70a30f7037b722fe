// Command etcd is etcd's own server command (go.etcd.io/etcd/server/v3/etcdmain),
// built from a pinned version for the test bed.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
