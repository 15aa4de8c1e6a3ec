package memif

import (
	"sync/atomic"
	"unsafe"
)

// desc mirrors memif_desc_t (16 bytes, naturally aligned, no padding).
type desc struct {
	flags    uint16
	region   uint16
	length   uint32
	offset   uint32
	metadata uint32
}

// ring is a view of a memif_ring_t living in shared memory. head and tail are
// 16-bit fields; Go has no 16-bit atomics, so they are accessed through the
// aligned 32-bit words containing them.
type ring struct {
	base unsafe.Pointer // start of the ring header inside a mapped region
	size uint16         // number of descriptors (power of two, <= 1<<14)
	mask uint16
}

func newRing(region []byte, off uint32, log2 uint8) ring {
	size := uint16(1) << log2
	return ring{base: unsafe.Pointer(&region[off]), size: size, mask: size - 1}
}

// ringBytes is the size of a ring header plus its descriptors.
func ringBytes(log2 uint8) uint64 { return ringDescOff + descSize<<uint64(log2) }

func (r *ring) headWord() *uint32 { return (*uint32)(unsafe.Add(r.base, ringHeadWordOff)) }
func (r *ring) tailWord() *uint32 { return (*uint32)(unsafe.Add(r.base, ringTailOff)) }

func (r *ring) cookie() uint32 { return atomic.LoadUint32((*uint32)(r.base)) }

func (r *ring) init() {
	atomic.StoreUint32((*uint32)(r.base), cookie)
	atomic.StoreUint32(r.headWord(), 0)
	atomic.StoreUint32(r.tailWord(), 0)
}

func (r *ring) head() uint16  { return uint16(atomic.LoadUint32(r.headWord()) >> 16) }
func (r *ring) flags() uint16 { return uint16(atomic.LoadUint32(r.headWord())) }
func (r *ring) tail() uint16  { return uint16(atomic.LoadUint32(r.tailWord())) }

// setHead replaces the high half of the flags/head word. A CAS loop keeps a
// concurrent flags update by the peer (a plain 16-bit store) intact.
func (r *ring) setHead(h uint16) {
	w := r.headWord()
	for {
		old := atomic.LoadUint32(w)
		if atomic.CompareAndSwapUint32(w, old, old&0xffff|uint32(h)<<16) {
			return
		}
	}
}

func (r *ring) setFlags(f uint16) {
	w := r.headWord()
	for {
		old := atomic.LoadUint32(w)
		if atomic.CompareAndSwapUint32(w, old, old&0xffff0000|uint32(f)) {
			return
		}
	}
}

// setTail stores the tail. The upper half of that word is padding nobody uses.
func (r *ring) setTail(t uint16) { atomic.StoreUint32(r.tailWord(), uint32(t)) }

func (r *ring) desc(slot uint16) *desc {
	return (*desc)(unsafe.Add(r.base, ringDescOff+uintptr(slot&r.mask)*descSize))
}
