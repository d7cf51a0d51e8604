package state

import (
	"errors"
	"math"
)

// msgpackReader reads the MessagePack values the scripts' cmsgpack writes into records:
// nil, booleans, integers, strings and arrays (lib.lua's record format).
type msgpackReader struct {
	b string
	i int
}

// mpKind is the kind of a MessagePack value.
type mpKind int

const (
	mpNil mpKind = iota
	mpFalse
	mpTrue
	mpInt
	mpString
	mpArray
)

func (k mpKind) String() string {
	return [...]string{"nil", "false", "true", "integer", "string", "array"}[k]
}

// mpValue is one MessagePack value; an array's elements follow it in the input.
type mpValue struct {
	kind mpKind
	i    int64  // mpInt
	str  string // mpString
	n    int    // mpArray: its length
}

var errTruncated = errors.New("truncated record")

// take returns the next n bytes.
func (d *msgpackReader) take(n int) (string, error) {
	if n < 0 || n > len(d.b)-d.i {
		return "", errTruncated
	}
	s := d.b[d.i : d.i+n]
	d.i += n
	return s, nil
}

// uint reads a big-endian unsigned integer of n bytes.
func (d *msgpackReader) uint(n int) (uint64, error) {
	s, err := d.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := range n {
		v = v<<8 | uint64(s[i])
	}
	return v, nil
}

// next reads the next value.
func (d *msgpackReader) next() (mpValue, error) {
	s, err := d.take(1)
	if err != nil {
		return mpValue{}, err
	}
	c := s[0]
	switch {
	case c <= 0x7f:
		return mpValue{kind: mpInt, i: int64(c)}, nil
	case c >= 0xe0:
		return mpValue{kind: mpInt, i: int64(int8(c))}, nil
	case c&0xe0 == 0xa0:
		return d.str(int(c & 0x1f))
	case c&0xf0 == 0x90:
		return mpValue{kind: mpArray, n: int(c & 0x0f)}, nil
	}
	switch c {
	case 0xc0:
		return mpValue{kind: mpNil}, nil
	case 0xc2:
		return mpValue{kind: mpFalse}, nil
	case 0xc3:
		return mpValue{kind: mpTrue}, nil
	case 0xcc, 0xcd, 0xce, 0xcf: // uint 8..64
		v, err := d.uint(1 << (c - 0xcc))
		if err != nil {
			return mpValue{}, err
		}
		if v > math.MaxInt64 {
			return mpValue{}, errors.New("integer out of range")
		}
		return mpValue{kind: mpInt, i: int64(v)}, nil
	case 0xd0, 0xd1, 0xd2, 0xd3: // int 8..64
		n := 1 << (c - 0xd0)
		v, err := d.uint(n)
		if err != nil {
			return mpValue{}, err
		}
		shift := 64 - 8*n
		return mpValue{kind: mpInt, i: int64(v<<shift) >> shift}, nil
	case 0xd9, 0xda, 0xdb: // str 8, 16, 32
		n, err := d.uint(1 << (c - 0xd9))
		if err != nil {
			return mpValue{}, err
		}
		return d.str(int(min(n, math.MaxInt32)))
	case 0xdc, 0xdd: // array 16, 32
		n, err := d.uint(2 << (c - 0xdc))
		if err != nil {
			return mpValue{}, err
		}
		return mpValue{kind: mpArray, n: int(min(n, math.MaxInt32))}, nil
	}
	return mpValue{}, errors.New("unexpected MessagePack type byte")
}

func (d *msgpackReader) str(n int) (mpValue, error) {
	s, err := d.take(n)
	return mpValue{kind: mpString, str: s}, err
}

// skip skips n values (and their elements).
func (d *msgpackReader) skip(n int) error {
	for ; n > 0; n-- {
		v, err := d.next()
		if err != nil {
			return err
		}
		if v.kind == mpArray {
			if err := d.skip(v.n); err != nil {
				return err
			}
		}
	}
	return nil
}
