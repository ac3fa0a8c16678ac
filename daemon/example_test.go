package daemon_test

import (
	"fmt"
	"strings"

	"github.com/pop3d/pop3d/daemon"
)

func ExampleWriteMessage() {
	// LF line endings, a line starting with a dot, no final newline.
	msg := "Subject: hi\n\n.signature\nbye"
	var out strings.Builder
	n, err := daemon.WriteMessage(&out, strings.NewReader(msg))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n%d octets\n", out.String(), n)
	// Output:
	// "Subject: hi\r\n\r\n..signature\r\nbye\r\n.\r\n"
	// 32 octets
}
