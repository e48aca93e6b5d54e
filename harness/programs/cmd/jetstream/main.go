// Command jetstream stands in for Jetstream's entrypoint in the node tests: it accepts
// any subcommand, prints its arguments and the METRIC_HUB_SHA it was given, and exits
// 0, so a pod's log shows which tooling the webhook chose for it. It returns at once,
// and a SIGTERM while it runs ends it at once too (a pod is never held for its grace
// period).
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	fmt.Printf("jetstream %s\n", strings.Join(os.Args[1:], " "))
	fmt.Printf("METRIC_HUB_SHA=%s\n", os.Getenv("METRIC_HUB_SHA"))
}
