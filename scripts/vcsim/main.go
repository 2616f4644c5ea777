// vcsim for vmtailor's tests: the govmomi simulator (Debian's
// golang-github-vmware-govmomi-dev) as a small server. Debian ships the simulator
// library but not its command, so this is the command, kept to what the tests need.
//
// It prints one line, the SDK URL (with credentials), once it is serving, and stops when
// its standard input closes so a killed test run never leaves it behind.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("l", "127.0.0.1:0", "listen address")
	username := flag.String("username", "vmtailor", "login user")
	password := flag.String("password", "vmtailor", "login password")
	vms := flag.Int("vm", 2, "VMs per host")
	flag.Parse()

	model := simulator.VPX()
	model.Machine = *vms
	model.ClusterHost = 1
	// Clones arrive powered off; vmtailor refuses a running VM.
	model.Autostart = false
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()

	// HTTPS like a real vCenter, with httptest's self-signed localhost certificate.
	model.Service.TLS = new(tls.Config)
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	server := model.Service.NewServer()
	defer server.Close()

	fmt.Println(server.URL.String())
	_, _ = io.Copy(io.Discard, os.Stdin)
}
