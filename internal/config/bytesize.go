package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ByteSize is a number of bytes, written as a whole number or with a unit:
// "256MiB", "1.5GiB", "500MB", "64KiB". Binary units (KiB, MiB, GiB, TiB)
// count 1024s, decimal ones (kB, MB, GB, TB) 1000s.
type ByteSize int64

// Binary size units.
const (
	KiB ByteSize = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
)

var sizeUnits = []struct {
	name string
	mult float64
}{
	// Longest first, so "MiB" is not read as "B" after "Mi".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"b", 1},
}

// ParseByteSize reads a size like "256MiB" (see ByteSize).
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	num, mult := t, 1.0
	lower := strings.ToLower(t)
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.name) {
			num, mult = strings.TrimSpace(t[:len(t)-len(u.name)]), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	v := f * mult
	// 2^62 keeps sums of sizes far from overflow; fractions of a byte are refused.
	if err != nil || num == "" || strings.ContainsAny(num, "+_xXpPiInN") || !(v >= 0) || v > 1<<62 || v != math.Trunc(v) {
		return 0, fmt.Errorf("must be a size like 256MiB or 500MB, got %q", s)
	}
	return ByteSize(v), nil
}

// String writes the size in the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		v    ByteSize
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if b != 0 && b%u.v == 0 {
			return strconv.FormatInt(int64(b/u.v), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// UnmarshalYAML reads a scalar with ParseByteSize.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a size like 256MiB or 500MB, got %s", nodeKind(n))
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML writes the size as String does.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }
