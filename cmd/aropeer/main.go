// Command aropeer runs a GPoW node: an edge, a keeper or a bootstrap node.
package main

import "os"

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
