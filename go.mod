module github.com/pop3d/pop3d

go 1.26.0

require (
	github.com/GehirnInc/crypt v0.0.0-20230320061759-8cc1b52080c5
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/emersion/go-maildir v0.6.0
	github.com/openwall/yescrypt-go v1.0.0
	github.com/pires/go-proxyproto v0.15.0
	golang.org/x/crypto v0.58.0
	golang.org/x/sys v0.49.0
)
