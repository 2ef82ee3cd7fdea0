package stats

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
)

// visitors counts distinct clients in bounded memory: exactly, as a set
// of 64-bit client hashes, up to exactMax of them; then as a HyperLogLog
// sketch (4 KiB, about 1.6% standard error). Sets and sketches of
// several nodes merge into the count of their union, so a viewer who
// moves between edges is one visitor.
type visitors struct {
	exact map[uint64]struct{} // nil once regs is set
	regs  []uint8             // HyperLogLog registers; nil while exact
}

const (
	exactMax = 512
	hllBits  = 12
	hllSize  = 1 << hllBits
)

// clientHash names a client: its address, user agent and player session,
// hashed so a long User-Agent costs no memory. The hash is the same on
// every node, so their visitor sets merge.
func clientHash(ip, userAgent, session string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(ip))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(userAgent))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(session))
	return mix64(h.Sum64())
}

// mix64 is the splitmix64 finalizer: FNV's high bits are weak, and the
// sketch indexes by them.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func (v *visitors) add(h uint64) {
	if v.regs != nil {
		v.addHLL(h)
		return
	}
	if v.exact == nil {
		v.exact = make(map[uint64]struct{})
	}
	v.exact[h] = struct{}{}
	if len(v.exact) > exactMax {
		v.toHLL()
	}
}

func (v *visitors) addHLL(h uint64) {
	idx := h >> (64 - hllBits)
	rank := uint8(bits.LeadingZeros64(h<<hllBits|1<<(hllBits-1)) + 1)
	if rank > v.regs[idx] {
		v.regs[idx] = rank
	}
}

func (v *visitors) toHLL() {
	v.regs = make([]uint8, hllSize)
	for h := range v.exact {
		v.addHLL(h)
	}
	v.exact = nil
}

// count returns the number of distinct clients added (estimated once
// past exactMax).
func (v *visitors) count() int64 {
	if v.regs == nil {
		return int64(len(v.exact))
	}
	m := float64(hllSize)
	sum, zeros := 0.0, 0
	for _, r := range v.regs {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	est := 0.7213 / (1 + 1.079/m) * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros)) // linear counting for small sets
	}
	return int64(math.Round(est))
}

// merge adds o's clients to v.
func (v *visitors) merge(o *visitors) {
	if o.regs == nil {
		for h := range o.exact {
			v.add(h)
		}
		return
	}
	if v.regs == nil {
		v.toHLL()
	}
	for i, r := range o.regs {
		if r > v.regs[i] {
			v.regs[i] = r
		}
	}
}

func (v *visitors) clone() *visitors {
	c := &visitors{}
	c.merge(v)
	return c
}

// visitorsJSON is the wire form of a visitors set in a node's report.
type visitorsJSON struct {
	Exact string `json:"exact,omitempty"` // base64 of 8-byte big-endian hashes
	HLL   string `json:"hll,omitempty"`   // base64 of the registers
}

// MarshalJSON implements json.Marshaler.
func (v *visitors) MarshalJSON() ([]byte, error) {
	var j visitorsJSON
	if v.regs != nil {
		j.HLL = base64.StdEncoding.EncodeToString(v.regs)
	} else if len(v.exact) > 0 {
		b := make([]byte, 0, 8*len(v.exact))
		for h := range v.exact {
			b = binary.BigEndian.AppendUint64(b, h)
		}
		j.Exact = base64.StdEncoding.EncodeToString(b)
	}
	return json.Marshal(j)
}

var errBadVisitors = errors.New("stats: bad visitors set")

// UnmarshalJSON implements json.Unmarshaler.
func (v *visitors) UnmarshalJSON(data []byte) error {
	var j visitorsJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("%w: %w", errBadVisitors, err)
	}
	*v = visitors{}
	if j.HLL != "" {
		regs, err := base64.StdEncoding.DecodeString(j.HLL)
		if err != nil || len(regs) != hllSize {
			return fmt.Errorf("%w: hll of %d bytes", errBadVisitors, len(regs))
		}
		for _, r := range regs {
			if r > 64-hllBits+1 {
				return fmt.Errorf("%w: register %d", errBadVisitors, r)
			}
		}
		v.regs = regs
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(j.Exact)
	if err != nil || len(b)%8 != 0 || len(b) > 8*exactMax {
		return fmt.Errorf("%w: exact set of %d bytes", errBadVisitors, len(b))
	}
	for ; len(b) > 0; b = b[8:] {
		v.add(binary.BigEndian.Uint64(b))
	}
	return nil
}
