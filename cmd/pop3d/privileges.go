package main

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// credential is who pop3d becomes after binding its sockets.
type credential struct {
	user   string
	uid    int
	gid    int
	groups []int // supplementary groups, including gid
}

// idLookup resolves user and group names; os/user in production, fakes in
// tests.
type idLookup struct {
	lookupUser  func(name string) (*user.User, error)
	lookupGroup func(name string) (*user.Group, error)
	groupIDs    func(u *user.User) ([]string, error)
}

func osLookup() idLookup {
	return idLookup{
		lookupUser:  user.Lookup,
		lookupGroup: user.LookupGroup,
		groupIDs:    func(u *user.User) ([]string, error) { return u.GroupIds() },
	}
}

// planDrop decides whether and to whom to switch, given the effective uid
// pop3d runs as and the user/group keys. It returns a nil credential when
// nothing is to be done, and a warning for the log when that deserves one.
func planDrop(euid int, userName, groupName string, lk idLookup) (*credential, string, error) {
	if userName == "" {
		if groupName != "" {
			return nil, "", errors.New("group is set but user is not")
		}
		if euid == 0 {
			return nil, "running as root: set user (and group) in pop3d.conf so that pop3d drops privileges after binding, or run it from systemd as an unprivileged user", nil
		}
		return nil, "", nil
	}
	u, err := lk.lookupUser(userName)
	if err != nil {
		return nil, "", fmt.Errorf("user %s: %w", userName, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, "", fmt.Errorf("user %s: uid %q is not numeric", userName, u.Uid)
	}
	if uid == 0 {
		return nil, "", fmt.Errorf("user %s has uid 0: that would not drop privileges", userName)
	}
	if euid != 0 {
		if euid == uid {
			return nil, "", nil
		}
		return nil, fmt.Sprintf("user = %s ignored: pop3d is not running as root (uid %d), so it cannot switch users", userName, euid), nil
	}
	gidStr := u.Gid
	if groupName != "" {
		g, err := lk.lookupGroup(groupName)
		if err != nil {
			return nil, "", fmt.Errorf("group %s: %w", groupName, err)
		}
		gidStr = g.Gid
	}
	gid, err := strconv.Atoi(gidStr)
	if err != nil {
		return nil, "", fmt.Errorf("group of %s: gid %q is not numeric", userName, gidStr)
	}
	if gid == 0 {
		return nil, "", fmt.Errorf("user %s: group id 0 (root) would keep root's group privileges; set group", userName)
	}
	// Like initgroups(3): the user's supplementary groups plus the chosen
	// one. The root group is never kept.
	groups := []int{gid}
	if ids, err := lk.groupIDs(u); err == nil {
		for _, s := range ids {
			n, err := strconv.Atoi(s)
			if err != nil || n == 0 || n == gid {
				continue
			}
			groups = append(groups, n)
		}
	}
	return &credential{user: userName, uid: uid, gid: gid, groups: groups}, "", nil
}

// dropPrivileges switches the whole process to c. Since Go 1.16 the set*id
// calls apply to every thread. It verifies that root cannot be regained.
func dropPrivileges(c *credential) error {
	if err := syscall.Setgroups(c.groups); err != nil {
		return fmt.Errorf("setgroups %v: %w", c.groups, err)
	}
	if err := syscall.Setgid(c.gid); err != nil {
		return fmt.Errorf("setgid %d: %w", c.gid, err)
	}
	if err := syscall.Setuid(c.uid); err != nil {
		return fmt.Errorf("setuid %d: %w", c.uid, err)
	}
	if syscall.Getuid() != c.uid || syscall.Geteuid() != c.uid || syscall.Getgid() != c.gid || syscall.Getegid() != c.gid {
		return fmt.Errorf("switching to %s did not take effect (uid %d euid %d)", c.user, syscall.Getuid(), syscall.Geteuid())
	}
	if err := syscall.Setuid(0); err == nil {
		return errors.New("root could be regained after dropping privileges")
	}
	return nil
}
