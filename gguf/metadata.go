package gguf

import (
	"errors"
	"fmt"
	"math"
)

// ErrKeyNotFound is wrapped by the typed getters' errors for a missing key.
var ErrKeyNotFound = errors.New("metadata key not found")

// ErrWrongType is wrapped by the typed getters' errors for a key whose
// value has a type the getter cannot convert.
var ErrWrongType = errors.New("metadata value has the wrong type")

func notFound(key string) error { return fmt.Errorf("gguf: key %s: %w", key, ErrKeyNotFound) }

func wrongType(key, want string, v Value) error {
	found := v.Type.String()
	if a, ok := v.V.(Array); ok && v.Type == TypeArray {
		found = "array of " + a.Elem.String()
	}
	return fmt.Errorf("gguf: key %s: want %s, found %s: %w", key, want, found, ErrWrongType)
}

// lookup is Lookup with the not-found error.
func (f *File) lookup(key string) (Value, error) {
	v, ok := f.Lookup(key)
	if !ok {
		return Value{}, notFound(key)
	}
	return v, nil
}

// asInt64 converts any integer value to int64; ok is false for other types
// and for uint64 values above MaxInt64.
func asInt64(x any) (int64, bool) {
	switch v := x.(type) {
	case uint8:
		return int64(v), true
	case int8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case int16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint64:
		if v > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	}
	return 0, false
}

func isIntegerValue(x any) bool {
	switch x.(type) {
	case uint8, int8, uint16, int16, uint32, int32, uint64, int64:
		return true
	}
	return false
}

// GetString returns a string value.
func (f *File) GetString(key string) (string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	s, ok := v.V.(string)
	if !ok {
		return "", wrongType(key, "string", v)
	}
	return s, nil
}

// GetUint32 returns an integer value of any integer type that fits in a uint32.
func (f *File) GetUint32(key string) (uint32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	if u, ok := v.V.(uint64); ok && u <= math.MaxUint32 {
		return uint32(u), nil
	}
	n, ok := asInt64(v.V)
	if !ok {
		if isIntegerValue(v.V) {
			return 0, fmt.Errorf("gguf: key %s: %s value %v does not fit in uint32", key, v.Type, v.V)
		}
		return 0, wrongType(key, "uint32", v)
	}
	if n < 0 || n > math.MaxUint32 {
		return 0, fmt.Errorf("gguf: key %s: %s value %d does not fit in uint32", key, v.Type, n)
	}
	return uint32(n), nil
}

// GetInt64 returns an integer value of any integer type that fits in an int64.
func (f *File) GetInt64(key string) (int64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	n, ok := asInt64(v.V)
	if !ok {
		if isIntegerValue(v.V) {
			return 0, fmt.Errorf("gguf: key %s: %s value %v does not fit in int64", key, v.Type, v.V)
		}
		return 0, wrongType(key, "int64", v)
	}
	return n, nil
}

// GetFloat32 returns a float32 or float64 value as a float32.
func (f *File) GetFloat32(key string) (float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.V.(type) {
	case float32:
		return x, nil
	case float64:
		return float32(x), nil
	}
	return 0, wrongType(key, "float32", v)
}

// GetBool returns a bool value.
func (f *File) GetBool(key string) (bool, error) {
	v, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	b, ok := v.V.(bool)
	if !ok {
		return false, wrongType(key, "bool", v)
	}
	return b, nil
}

// lookupArray returns an array value.
func (f *File) lookupArray(key, want string) (Array, error) {
	v, err := f.lookup(key)
	if err != nil {
		return Array{}, err
	}
	a, ok := v.V.(Array)
	if !ok {
		return Array{}, wrongType(key, want, v)
	}
	return a, nil
}

// GetStrings returns a copy of an array of strings.
func (f *File) GetStrings(key string) ([]string, error) {
	a, err := f.lookupArray(key, "array of string")
	if err != nil {
		return nil, err
	}
	s, ok := a.V.([]string)
	if !ok {
		return nil, wrongType(key, "array of string", Value{TypeArray, a})
	}
	return append([]string(nil), s...), nil
}

// GetFloat32s returns an array of float32 or float64 as a new []float32.
func (f *File) GetFloat32s(key string) ([]float32, error) {
	a, err := f.lookupArray(key, "array of float32")
	if err != nil {
		return nil, err
	}
	switch s := a.V.(type) {
	case []float32:
		return append([]float32(nil), s...), nil
	case []float64:
		out := make([]float32, len(s))
		for i, x := range s {
			out[i] = float32(x)
		}
		return out, nil
	}
	return nil, wrongType(key, "array of float32", Value{TypeArray, a})
}

// GetInt32s returns an array of any integer type as a new []int32; every
// element must fit.
func (f *File) GetInt32s(key string) ([]int32, error) {
	a, err := f.lookupArray(key, "array of int32")
	if err != nil {
		return nil, err
	}
	var out []int32
	switch s := a.V.(type) {
	case []uint8:
		out, err = intsToInt32(key, s)
	case []int8:
		out, err = intsToInt32(key, s)
	case []uint16:
		out, err = intsToInt32(key, s)
	case []int16:
		out, err = intsToInt32(key, s)
	case []uint32:
		out, err = intsToInt32(key, s)
	case []int32:
		out = append([]int32(nil), s...)
	case []uint64:
		out, err = intsToInt32(key, s)
	case []int64:
		out, err = intsToInt32(key, s)
	default:
		return nil, wrongType(key, "array of int32", Value{TypeArray, a})
	}
	return out, err
}

type integer interface {
	~uint8 | ~int8 | ~uint16 | ~int16 | ~uint32 | ~int32 | ~uint64 | ~int64
}

func intsToInt32[T integer](key string, s []T) ([]int32, error) {
	out := make([]int32, len(s))
	for i, x := range s {
		// Compare in the source type's signedness so neither side wraps.
		if (x < 0 && int64(x) < math.MinInt32) || (x > 0 && uint64(x) > math.MaxInt32) {
			return nil, fmt.Errorf("gguf: key %s: element %d (%v) does not fit in int32", key, i, x)
		}
		out[i] = int32(x)
	}
	return out, nil
}

// or returns def for a missing key and otherwise get's result.
func or[T any](f *File, key string, def T, get func(string) (T, error)) (T, error) {
	if _, ok := f.Lookup(key); !ok {
		return def, nil
	}
	return get(key)
}

// GetStringOr is GetString, but a missing key gives def and no error.
func (f *File) GetStringOr(key, def string) (string, error) { return or(f, key, def, f.GetString) }

// GetUint32Or is GetUint32, but a missing key gives def and no error.
func (f *File) GetUint32Or(key string, def uint32) (uint32, error) {
	return or(f, key, def, f.GetUint32)
}

// GetInt64Or is GetInt64, but a missing key gives def and no error.
func (f *File) GetInt64Or(key string, def int64) (int64, error) { return or(f, key, def, f.GetInt64) }

// GetFloat32Or is GetFloat32, but a missing key gives def and no error.
func (f *File) GetFloat32Or(key string, def float32) (float32, error) {
	return or(f, key, def, f.GetFloat32)
}

// GetBoolOr is GetBool, but a missing key gives def and no error.
func (f *File) GetBoolOr(key string, def bool) (bool, error) { return or(f, key, def, f.GetBool) }
