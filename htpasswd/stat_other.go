//go:build !linux

package htpasswd

import "io/fs"

// idOf returns the portable part of a file's identity: size and mtime.
func idOf(fi fs.FileInfo) fileID {
	return fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}
