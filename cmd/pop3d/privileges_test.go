package main

import (
	"errors"
	"os/user"
	"reflect"
	"strings"
	"testing"
)

func fakeLookup() idLookup {
	users := map[string]*user.User{
		"pop3d":   {Username: "pop3d", Uid: "110", Gid: "120"},
		"root":    {Username: "root", Uid: "0", Gid: "0"},
		"rootgrp": {Username: "rootgrp", Uid: "111", Gid: "0"},
		"weird":   {Username: "weird", Uid: "S-1-5", Gid: "120"},
	}
	groups := map[string]*user.Group{
		"mail":  {Name: "mail", Gid: "8"},
		"pop3d": {Name: "pop3d", Gid: "120"},
	}
	return idLookup{
		lookupUser: func(name string) (*user.User, error) {
			if u, ok := users[name]; ok {
				return u, nil
			}
			return nil, user.UnknownUserError(name)
		},
		lookupGroup: func(name string) (*user.Group, error) {
			if g, ok := groups[name]; ok {
				return g, nil
			}
			return nil, user.UnknownGroupError(name)
		},
		groupIDs: func(u *user.User) ([]string, error) {
			if u.Username == "pop3d" {
				return []string{"120", "0", "42", "ssl"}, nil
			}
			return nil, errors.New("no group database")
		},
	}
}

func TestPlanDrop(t *testing.T) {
	tests := []struct {
		name        string
		euid        int
		user, group string
		want        *credential
		warn        string // substring; "" = no warning
		err         string // substring; "" = no error
	}{
		{name: "root, no user: warn", euid: 0, warn: "running as root"},
		{name: "not root, no user: nothing", euid: 1000},
		{name: "root to user", euid: 0, user: "pop3d",
			want: &credential{user: "pop3d", uid: 110, gid: 120, groups: []int{120, 42}}},
		{name: "root to user and group", euid: 0, user: "pop3d", group: "mail",
			want: &credential{user: "pop3d", uid: 110, gid: 8, groups: []int{8, 120, 42}}},
		{name: "already that user", euid: 110, user: "pop3d"},
		{name: "other non-root user", euid: 1000, user: "pop3d", warn: "not running as root"},
		{name: "unknown user", euid: 0, user: "nobody-here", err: "nobody-here"},
		{name: "unknown group", euid: 0, user: "pop3d", group: "nogroup-here", err: "nogroup-here"},
		{name: "user root refused", euid: 0, user: "root", err: "uid 0"},
		{name: "root group refused", euid: 0, user: "rootgrp", err: "group id 0"},
		{name: "non-numeric uid", euid: 0, user: "weird", err: "not numeric"},
		{name: "group without user", euid: 0, group: "mail", err: "group is set but user is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warn, err := planDrop(tt.euid, tt.user, tt.group, fakeLookup())
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("credential = %+v, want %+v", got, tt.want)
			}
			if (tt.warn == "") != (warn == "") || !strings.Contains(warn, tt.warn) {
				t.Errorf("warning = %q, want %q", warn, tt.warn)
			}
		})
	}
}
