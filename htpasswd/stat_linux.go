package htpasswd

import (
	"io/fs"
	"syscall"
)

// idOf returns the identity of a file: a replaced file (new inode), an
// edited one (size, mtime) and one whose mtime was restored (ctime) all
// differ from the previous identity.
func idOf(fi fs.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return id
	}
	id.dev, id.ino = st.Dev, st.Ino
	id.ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
	return id
}
