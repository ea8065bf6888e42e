package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// writeAtomic writes data to path through a temporary file in the same
// directory, synced before it takes the name and the directory synced
// after, so that a crash leaves either the old file or the whole new one.
// Without replace, an existing path is left alone and the error matches
// fs.ErrExist.
func writeAtomic(path string, data []byte, perm fs.FileMode, replace bool) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		_ = os.Remove(tmp) // fails harmlessly once renamed
	}()
	// Chmod is not subject to the umask, so the mode is exactly perm.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmp, path)
	} else {
		// A hard link fails if path exists, which a rename would replace.
		err = os.Link(tmp, path)
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for sync there
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readSecret reads a file that must be readable only by its owner: what
// names it in messages ("identity key"), missing is the sentinel for an
// absent file and hint says what to do then.
func readSecret(path, what string, missing error, hint string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &explained{missing, fmt.Sprintf("%s %s does not exist: %s", what, path, hint)}
	}
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", what, err)
	}
	// Windows has no Unix modes; its ACLs are the operator's business.
	if mode := fi.Mode().Perm(); runtime.GOOS != "windows" && mode&0o077 != 0 {
		return nil, &explained{ErrKeyPermissions, fmt.Sprintf(
			"%s %s has mode %04o: it must be readable only by its owner; run: chmod 600 %s", what, path, mode, path)}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", what, err)
	}
	return data, nil
}

// maxSecretSize bounds what readSecret reads: keys and tokens are tiny, and
// a huge file there is not one.
const maxSecretSize = 64 << 10
