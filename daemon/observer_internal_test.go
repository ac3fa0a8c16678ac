package daemon

import (
	"slices"
	"testing"
)

// TestCommandNamesCoverTable: every command of the table has its own
// label, so a new command is not counted as UNKNOWN.
func TestCommandNamesCoverTable(t *testing.T) {
	names := CommandNames()
	for name := range commandTable() {
		if !slices.Contains(names, name) || commandName(name+" x") != name {
			t.Errorf("command %s has no label of its own (add it to CommandNames and commandName)", name)
		}
	}
	if got := commandName("XYZZY"); got != "UNKNOWN" {
		t.Errorf("commandName(XYZZY) = %q", got)
	}
	if got := commandName("retr 1"); got != "RETR" {
		t.Errorf("commandName(retr 1) = %q", got)
	}
}
