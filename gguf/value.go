package gguf

import (
	"fmt"
	"strconv"
	"strings"
)

// ValueType is a GGUF metadata value type id, as stored in the file.
type ValueType uint32

// The GGUF metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{
	TypeUint8:   "uint8",
	TypeInt8:    "int8",
	TypeUint16:  "uint16",
	TypeInt16:   "int16",
	TypeUint32:  "uint32",
	TypeInt32:   "int32",
	TypeFloat32: "float32",
	TypeBool:    "bool",
	TypeString:  "string",
	TypeArray:   "array",
	TypeUint64:  "uint64",
	TypeInt64:   "int64",
	TypeFloat64: "float64",
}

// String is the lower-case name of the type ("uint32", "string", "array"),
// or type(n) for an id GGUF does not define.
func (t ValueType) String() string {
	if t.valid() {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

func (t ValueType) valid() bool { return t <= TypeFloat64 }

// size is the encoded size of a fixed-size scalar of type t, 0 for strings and arrays.
func (t ValueType) size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one encoded value of type t can take; it
// bounds counts read from a file before anything is allocated for them.
func (t ValueType) minSize() int {
	switch t {
	case TypeString:
		return 8 // length
	case TypeArray:
		return 12 // element type + length
	}
	return t.size()
}

// Value is one metadata value. V holds the Go value for Type: uint8, int8,
// uint16, int16, uint32, int32, float32, bool, string, uint64, int64,
// float64, or an Array for TypeArray.
type Value struct {
	Type ValueType
	V    any
}

// Array is an array value. V is a typed slice matching Elem ([]uint8,
// []int8, []uint16, []int16, []uint32, []int32, []float32, []bool,
// []string, []uint64, []int64, []float64), or []Array when Elem is TypeArray.
type Array struct {
	Elem ValueType
	V    any
}

// KV is one metadata key and its value, in file order.
type KV struct {
	Key   string
	Value Value
}

// Len is the number of elements in a, 0 if V is not a slice this package knows.
func (a Array) Len() int {
	switch s := a.V.(type) {
	case []uint8:
		return len(s)
	case []int8:
		return len(s)
	case []uint16:
		return len(s)
	case []int16:
		return len(s)
	case []uint32:
		return len(s)
	case []int32:
		return len(s)
	case []float32:
		return len(s)
	case []bool:
		return len(s)
	case []string:
		return len(s)
	case []uint64:
		return len(s)
	case []int64:
		return len(s)
	case []float64:
		return len(s)
	case []Array:
		return len(s)
	}
	return 0
}

// Index returns element i of a as a Value (an Array element gives a
// TypeArray Value). It panics if i is out of range, like a slice index.
func (a Array) Index(i int) Value {
	switch s := a.V.(type) {
	case []uint8:
		return Value{TypeUint8, s[i]}
	case []int8:
		return Value{TypeInt8, s[i]}
	case []uint16:
		return Value{TypeUint16, s[i]}
	case []int16:
		return Value{TypeInt16, s[i]}
	case []uint32:
		return Value{TypeUint32, s[i]}
	case []int32:
		return Value{TypeInt32, s[i]}
	case []float32:
		return Value{TypeFloat32, s[i]}
	case []bool:
		return Value{TypeBool, s[i]}
	case []string:
		return Value{TypeString, s[i]}
	case []uint64:
		return Value{TypeUint64, s[i]}
	case []int64:
		return Value{TypeInt64, s[i]}
	case []float64:
		return Value{TypeFloat64, s[i]}
	case []Array:
		return Value{TypeArray, s[i]}
	}
	panic(fmt.Sprintf("gguf: Array.Index on %T", a.V))
}

// String formats the value for people: numbers and bools as Go prints
// them, strings quoted, arrays as "[elem x n] [first few, ...]".
func (v Value) String() string { return v.Format(8) }

// Format is like String but shows at most maxElems elements of each array
// (all of them when maxElems < 0).
func (v Value) Format(maxElems int) string {
	var b strings.Builder
	v.format(&b, maxElems)
	return b.String()
}

func (v Value) format(b *strings.Builder, maxElems int) {
	switch x := v.V.(type) {
	case string:
		b.WriteString(strconv.Quote(x))
	case float32:
		b.WriteString(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case Array:
		x.format(b, maxElems)
	default:
		fmt.Fprint(b, x)
	}
}

// String formats the array like Value.String.
func (a Array) String() string { return Value{TypeArray, a}.String() }

func (a Array) format(b *strings.Builder, maxElems int) {
	n := a.Len()
	fmt.Fprintf(b, "[%s x %d] [", a.Elem, n)
	shown := n
	if maxElems >= 0 && shown > maxElems {
		shown = maxElems
	}
	for i := 0; i < shown; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		a.Index(i).format(b, maxElems)
	}
	if shown < n {
		if shown > 0 {
			b.WriteString(", ")
		}
		b.WriteString("...")
	}
	b.WriteByte(']')
}

// maxDepth bounds how deeply arrays may nest, in files and in the writer,
// so that neither recursion nor a crafted file can run away.
const maxDepth = 8

// scalarType is the ValueType of a Go scalar this package stores.
func scalarType(v any) (ValueType, bool) {
	switch v.(type) {
	case uint8:
		return TypeUint8, true
	case int8:
		return TypeInt8, true
	case uint16:
		return TypeUint16, true
	case int16:
		return TypeInt16, true
	case uint32:
		return TypeUint32, true
	case int32:
		return TypeInt32, true
	case float32:
		return TypeFloat32, true
	case bool:
		return TypeBool, true
	case string:
		return TypeString, true
	case uint64:
		return TypeUint64, true
	case int64:
		return TypeInt64, true
	case float64:
		return TypeFloat64, true
	}
	return 0, false
}

// sliceElemType is the element ValueType of a typed slice this package stores.
func sliceElemType(v any) (ValueType, bool) {
	switch v.(type) {
	case []uint8:
		return TypeUint8, true
	case []int8:
		return TypeInt8, true
	case []uint16:
		return TypeUint16, true
	case []int16:
		return TypeInt16, true
	case []uint32:
		return TypeUint32, true
	case []int32:
		return TypeInt32, true
	case []float32:
		return TypeFloat32, true
	case []bool:
		return TypeBool, true
	case []string:
		return TypeString, true
	case []uint64:
		return TypeUint64, true
	case []int64:
		return TypeInt64, true
	case []float64:
		return TypeFloat64, true
	case []Array:
		return TypeArray, true
	}
	return 0, false
}

// check reports whether v is well formed: V's Go type matches Type and
// arrays are consistent and nest at most maxDepth deep.
func (v Value) check() error {
	if v.Type == TypeArray {
		a, ok := v.V.(Array)
		if !ok {
			return fmt.Errorf("type array holds %T, want gguf.Array", v.V)
		}
		return a.check(1)
	}
	t, ok := scalarType(v.V)
	if !ok {
		return fmt.Errorf("type %s holds unsupported Go type %T", v.Type, v.V)
	}
	if t != v.Type {
		return fmt.Errorf("type %s holds a Go %T", v.Type, v.V)
	}
	return nil
}

func (a Array) check(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("arrays nested more than %d deep", maxDepth)
	}
	if !a.Elem.valid() {
		return fmt.Errorf("array of unknown element type %s", a.Elem)
	}
	t, ok := sliceElemType(a.V)
	if !ok {
		return fmt.Errorf("array of %s holds %T, want a typed slice", a.Elem, a.V)
	}
	if t != a.Elem {
		return fmt.Errorf("array of %s holds a Go %T", a.Elem, a.V)
	}
	if sub, ok := a.V.([]Array); ok {
		for i, s := range sub {
			if err := s.check(depth + 1); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
	}
	return nil
}
