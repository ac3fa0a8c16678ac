module github.com/pop3d/pop3d

go 1.26.0

require (
	github.com/GehirnInc/crypt v0.0.0-20230320061759-8cc1b52080c5 // indirect
	github.com/coreos/go-systemd/v22 v22.7.0 // indirect
	github.com/emersion/go-maildir v0.6.0 // indirect
	github.com/openwall/yescrypt-go v1.0.0 // indirect
	github.com/pires/go-proxyproto v0.15.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
