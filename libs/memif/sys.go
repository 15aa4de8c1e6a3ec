package memif

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// newMemfd creates an anonymous shared memory file of the given size and maps it.
// The caller owns both the fd (sent to the peer) and the mapping.
func newMemfd(name string, size uint64) (fd int, mem []byte, err error) {
	fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, nil, fmt.Errorf("memif: memfd_create: %w", err)
	}
	if err = unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("memif: ftruncate memfd to %d bytes: %w", size, err)
	}
	// The peer must not be able to shrink the region under our mapping (SIGBUS).
	if _, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK); err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("memif: sealing memfd: %w", err)
	}
	mem, err = mmapFd(fd, size)
	if err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, mem, nil
}

func mmapFd(fd int, size uint64) ([]byte, error) {
	if size == 0 || size > maxRegionSize {
		return nil, fmt.Errorf("memif: invalid region size %d", size)
	}
	// A region file smaller than announced would SIGBUS on access; check first.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("memif: fstat region fd: %w", err)
	}
	if uint64(st.Size) < size {
		return nil, fmt.Errorf("memif: region file has %d bytes, peer announced %d", st.Size, size)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("memif: mmap region of %d bytes: %w", size, err)
	}
	return mem, nil
}

// newEventfd returns a non-blocking eventfd as an *os.File so that reads park
// in the Go netpoller and can be interrupted by deadlines or Close.
func newEventfd() (*os.File, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("memif: eventfd: %w", err)
	}
	return os.NewFile(uintptr(fd), "memif-eventfd"), nil
}

// fileFromFd wraps an eventfd received from the peer, making it non-blocking first.
func fileFromFd(fd int) (*os.File, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("memif: set eventfd non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "memif-eventfd"), nil
}

// rawFd returns the descriptor of f without switching it to blocking mode
// (os.File.Fd would). Only used to pass the fd in SCM_RIGHTS.
func rawFd(f *os.File) (int, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := sc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return -1, err
	}
	return fd, nil
}
