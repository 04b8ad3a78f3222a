module github.com/fwd-project/fwd

go 1.26.0

require (
	github.com/florianl/go-nfqueue/v2 v2.0.4
	github.com/gaissmai/bart v0.30.0
	github.com/google/gopacket v1.1.19
	github.com/mdlayher/netlink v1.11.2
	golang.org/x/sys v0.50.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/mdlayher/socket v0.6.0 // indirect
	golang.org/x/net v0.53.0 // indirect
	golang.org/x/sync v0.20.0 // indirect
)
