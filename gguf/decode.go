package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// decoder reads little-endian GGUF primitives from a byte slice. Every
// read checks the bytes left first, so a truncated or lying file gives an
// error, never a panic or a huge allocation.
type decoder struct {
	b   []byte
	pos int
}

func (d *decoder) left() int { return len(d.b) - d.pos }

// need fails unless n more bytes are available; what names the thing being read.
func (d *decoder) need(n uint64, what string) error {
	if n > uint64(d.left()) {
		return fmt.Errorf("at offset %d: %s needs %d bytes but only %d are left", d.pos, what, n, d.left())
	}
	return nil
}

// fits fails unless count values of at least minSize bytes each could fit
// in what is left. It is the guard before allocating for a count.
func (d *decoder) fits(count uint64, minSize int, what string) error {
	if minSize > 0 && count > uint64(d.left())/uint64(minSize) {
		return fmt.Errorf("at offset %d: %s count %d cannot fit in the %d bytes left", d.pos, what, count, d.left())
	}
	return nil
}

func (d *decoder) u8(what string) (uint8, error) {
	if err := d.need(1, what); err != nil {
		return 0, err
	}
	v := d.b[d.pos]
	d.pos++
	return v, nil
}

func (d *decoder) u16(what string) (uint16, error) {
	if err := d.need(2, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint16(d.b[d.pos:])
	d.pos += 2
	return v, nil
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.need(4, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(d.b[d.pos:])
	d.pos += 4
	return v, nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.need(8, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(d.b[d.pos:])
	d.pos += 8
	return v, nil
}

// str reads a length-prefixed string, copying it out of the file's bytes
// so that it stays valid after the mapping is closed.
func (d *decoder) str(what string) (string, error) {
	b, err := d.strBytes(what)
	return string(b), err
}

// strBytes reads a length-prefixed string without copying.
func (d *decoder) strBytes(what string) ([]byte, error) {
	if d.left() < 8 {
		// Formatted here, not passed down, so the common path does not allocate.
		return nil, d.need(8, what+" length")
	}
	n := binary.LittleEndian.Uint64(d.b[d.pos:])
	d.pos += 8
	if err := d.need(n, what); err != nil {
		return nil, err
	}
	b := d.b[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

func (d *decoder) boolean(what string) (bool, error) {
	v, err := d.u8(what)
	if err != nil {
		return false, err
	}
	if v > 1 {
		return false, fmt.Errorf("at offset %d: %s: bool byte is %d, want 0 or 1", d.pos-1, what, v)
	}
	return v == 1, nil
}

// value reads one value of type t.
func (d *decoder) value(t ValueType, depth int) (Value, error) {
	var (
		v   any
		err error
	)
	switch t {
	case TypeUint8:
		v, err = d.u8("uint8")
	case TypeInt8:
		var x uint8
		x, err = d.u8("int8")
		v = int8(x)
	case TypeUint16:
		v, err = d.u16("uint16")
	case TypeInt16:
		var x uint16
		x, err = d.u16("int16")
		v = int16(x)
	case TypeUint32:
		v, err = d.u32("uint32")
	case TypeInt32:
		var x uint32
		x, err = d.u32("int32")
		v = int32(x)
	case TypeFloat32:
		var x uint32
		x, err = d.u32("float32")
		v = math.Float32frombits(x)
	case TypeBool:
		v, err = d.boolean("bool")
	case TypeString:
		v, err = d.str("string")
	case TypeUint64:
		v, err = d.u64("uint64")
	case TypeInt64:
		var x uint64
		x, err = d.u64("int64")
		v = int64(x)
	case TypeFloat64:
		var x uint64
		x, err = d.u64("float64")
		v = math.Float64frombits(x)
	case TypeArray:
		v, err = d.array(depth + 1)
	default:
		return Value{}, fmt.Errorf("at offset %d: unknown value type id %d", d.pos-4, uint32(t))
	}
	if err != nil {
		return Value{}, err
	}
	return Value{Type: t, V: v}, nil
}

// array reads an array's element type, length and elements.
func (d *decoder) array(depth int) (Array, error) {
	if depth > maxDepth {
		return Array{}, fmt.Errorf("at offset %d: arrays nested more than %d deep", d.pos, maxDepth)
	}
	et, err := d.u32("array element type")
	if err != nil {
		return Array{}, err
	}
	elem := ValueType(et)
	if !elem.valid() {
		return Array{}, fmt.Errorf("at offset %d: unknown array element type id %d", d.pos-4, et)
	}
	n, err := d.u64("array length")
	if err != nil {
		return Array{}, err
	}
	if err := d.fits(n, elem.minSize(), "array of "+elem.String()); err != nil {
		return Array{}, err
	}
	count := int(n)
	var v any
	switch elem {
	case TypeUint8:
		v, err = fixedArray(d, count, 1, func(b []byte) uint8 { return b[0] })
	case TypeInt8:
		v, err = fixedArray(d, count, 1, func(b []byte) int8 { return int8(b[0]) })
	case TypeUint16:
		v, err = fixedArray(d, count, 2, binary.LittleEndian.Uint16)
	case TypeInt16:
		v, err = fixedArray(d, count, 2, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) })
	case TypeUint32:
		v, err = fixedArray(d, count, 4, binary.LittleEndian.Uint32)
	case TypeInt32:
		v, err = fixedArray(d, count, 4, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) })
	case TypeFloat32:
		v, err = fixedArray(d, count, 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) })
	case TypeUint64:
		v, err = fixedArray(d, count, 8, binary.LittleEndian.Uint64)
	case TypeInt64:
		v, err = fixedArray(d, count, 8, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) })
	case TypeFloat64:
		v, err = fixedArray(d, count, 8, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) })
	case TypeBool:
		s := make([]bool, count)
		for i := range s {
			if s[i], err = d.boolean("bool array element"); err != nil {
				break
			}
		}
		v = s
	case TypeString:
		v, err = d.stringArray(count)
	case TypeArray:
		s := make([]Array, count)
		for i := range s {
			if s[i], err = d.array(depth + 1); err != nil {
				err = fmt.Errorf("array element %d: %w", i, err)
				break
			}
		}
		v = s
	}
	if err != nil {
		return Array{}, err
	}
	return Array{Elem: elem, V: v}, nil
}

// fixedArray decodes count values of size bytes each; the caller has
// already checked that they fit.
func fixedArray[T any](d *decoder, count, size int, conv func([]byte) T) ([]T, error) {
	if err := d.need(uint64(count)*uint64(size), "array data"); err != nil {
		return nil, err
	}
	s := make([]T, count)
	b := d.b[d.pos:]
	for i := range s {
		s[i] = conv(b[i*size:])
	}
	d.pos += count * size
	return s, nil
}

// stringArray reads count strings into one shared backing string: a
// vocabulary of 150k tokens then costs two allocations, not 150k.
func (d *decoder) stringArray(count int) ([]string, error) {
	start := d.pos
	total := 0
	for i := 0; i < count; i++ {
		b, err := d.strBytes("string")
		if err != nil {
			return nil, fmt.Errorf("string array element %d: %w", i, err)
		}
		total += len(b)
	}
	d.pos = start
	var sb strings.Builder
	sb.Grow(total)
	ends := make([]int, count)
	for i := range ends {
		b, _ := d.strBytes("") // validated by the first pass
		sb.Write(b)
		ends[i] = sb.Len()
	}
	all := sb.String()
	s := make([]string, count)
	prev := 0
	for i, e := range ends {
		s[i] = all[prev:e]
		prev = e
	}
	return s, nil
}
