package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
)

type inner struct {
	A []byte            `cbor:"1,keyasint"`
	B map[string]uint64 `cbor:"2,keyasint,omitempty"`
}

type outer struct {
	Name  string  `cbor:"1,keyasint"`
	In    inner   `cbor:"2,keyasint"`
	Items []inner `cbor:"3,keyasint,omitempty"`
	Neg   int64   `cbor:"4,keyasint,omitempty"`
	Opt   *inner  `cbor:"5,keyasint,omitempty"`
}

type ordered struct {
	C uint64 `cbor:"24,keyasint"`
	B uint64 `cbor:"10,keyasint"`
	A uint64 `cbor:"9,keyasint"`
}

type optCID struct {
	C cid.Cid `cbor:"1,keyasint,omitempty"`
}

// strict has a field without omitempty and a string-keyed field.
type strict struct {
	Must uint64 `cbor:"1,keyasint"`
	Name string `cbor:"name,omitempty"`
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{"uint", uint64(1 << 40)},
		{"neg", int64(-1000)},
		{"bool", true},
		{"string", "héllo"},
		{"bytes", []byte{0, 1, 2, 255}},
		{"empty bytes", []byte{}},
		{"string map", map[string]uint64{"b": 2, "a": 1, "aa": 3, "": 0}},
		{"int map", map[uint64]string{10: "x", 1: "y", 1000: "z"}},
		{"nested map", map[string]map[string][]byte{"x": {"y": {1}}, "a": {}}},
		{"list", []any{uint64(1), "two", []byte{3}, map[any]any{"k": true}}},
		{"nested struct", outer{
			Name:  "n",
			In:    inner{A: []byte("a"), B: map[string]uint64{"z": 1, "y": 2}},
			Items: []inner{{A: []byte{}}, {A: []byte{9}, B: map[string]uint64{"q": 0}}},
			Neg:   -5,
			Opt:   &inner{A: []byte{7}},
		}},
		{"sample", sample(t)},
		{"cid", optCID{C: CIDOf([]byte("x"))}},
		{"undefined cid omitted", optCID{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(reflect.TypeOf(tt.v))
			if err := Unmarshal(b, got.Interface(), len(b)); err != nil {
				t.Fatalf("Unmarshal(%x): %v", b, err)
			}
			if !reflect.DeepEqual(got.Elem().Interface(), tt.v) {
				t.Errorf("decode(encode(x)) = %#v, want %#v", got.Elem().Interface(), tt.v)
			}
			again, err := Marshal(got.Elem().Interface())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Errorf("encode(decode(b)) = %x, want %x", again, b)
			}
			// Into any as well: a canonical message stays canonical
			// whatever it is decoded into.
			var generic any
			if err := Unmarshal(b, &generic, len(b)); err != nil {
				t.Fatalf("Unmarshal into any: %v", err)
			}
		})
	}
}

func TestSampleSize(t *testing.T) {
	b, err := Marshal(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	// The benchmarks claim to measure a ~300-byte message.
	if len(b) < 250 || len(b) > 350 {
		t.Errorf("sample encodes to %d bytes, want about 300", len(b))
	}
}

func TestMarshalCanonicalBytes(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"small int", uint64(23), "17"},
		{"one-byte int", uint64(24), "1818"},
		{"negative", int64(-25), "3818"},
		{"float shortest", 1.0, "f93c00"},
		{"keys by encoded bytes", map[string]int{"b": 1, "a": 2, "aa": 3}, "a3616102616201626161" + "03"},
		{"int keys", strict{Must: 5}, "a10105"},
		{"int keys by encoded bytes", ordered{A: 1, B: 2, C: 3}, "a3" + "0901" + "0a02" + "181803"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(b); got != tt.want {
				t.Errorf("Marshal(%v) = %s, want %s", tt.v, got, tt.want)
			}
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	var (
		dup     *cbor.DupMapKeyError
		indef   *cbor.IndefiniteLengthError
		extra   *cbor.ExtraneousDataError
		unknown *cbor.UnknownFieldError
		syntax  *cbor.SyntaxError
		semErr  *cbor.SemanticError
	)
	tests := []struct {
		name   string
		hex    string
		into   func() any
		is     error // sentinel expected, or nil
		as     any   // error type expected, or nil
		anyErr bool  // only some error expected
	}{
		{"int not shortest", "1817", newAny, ErrNonCanonical, nil, false},
		{"int in 4 bytes", "1a00000017", newAny, ErrNonCanonical, nil, false},
		{"length not shortest", "580101", newAny, ErrNonCanonical, nil, false},
		{"float not shortest", "fa3f800000", newAny, ErrNonCanonical, nil, false},
		{"float64 not shortest", "fb3ff0000000000000", newAny, ErrNonCanonical, nil, false},
		{"map keys unsorted", "a2616202616101", newAny, ErrNonCanonical, nil, false},
		{"map keys length-first", "a2626161016162" + "02", newAny, ErrNonCanonical, nil, false},
		{"struct keys unsorted", "a2" + "0a02" + "0901", newOrdered, ErrNonCanonical, nil, false},
		{"undefined", "f7", newAny, ErrNonCanonical, nil, false},
		{"missing required field", "a0", newStrict, ErrNonCanonical, nil, false},
		{"explicit omitempty zero", "a2" + "0105" + "646e616d65" + "60", newStrict, ErrNonCanonical, nil, false},
		{"int into float field", "a10102", func() any {
			return new(struct {
				F float64 `cbor:"1,keyasint"`
			})
		}, ErrNonCanonical, nil, false},
		{"indefinite array", "9f01ff", newAny, nil, &indef, false},
		{"indefinite map", "bf616101ff", newAny, nil, &indef, false},
		{"indefinite bytes", "5f4101ff", newAny, nil, &indef, false},
		{"indefinite string", "7f6161ff", newAny, nil, &indef, false},
		{"duplicate key", "a2616101616102", newAny, nil, &dup, false},
		{"duplicate struct key", "a201050105", newStrict, nil, &dup, false},
		{"trailing byte", "0100", newAny, nil, &extra, false},
		{"two items", "a0a0", newAny, nil, &extra, false},
		{"unknown field", "a201051818" + "00", newStrict, nil, &unknown, false},
		{"field name case", "a20105" + "644e616d65" + "6178", newStrict, nil, &unknown, false},
		{"tag", "c11a5f5e1000", newAny, nil, nil, true},
		{"self-describe tag", "d9d9f701", newAny, nil, nil, true},
		{"bignum tag", "c249010000000000000000", newAny, nil, nil, true},
		{"invalid utf8", "62c328", newAny, nil, &semErr, false},
		{"truncated", "a26161", newAny, nil, nil, true},
		{"reserved info", "1c", newAny, nil, &syntax, false},
		{"overflow into uint8", "a1071901ff", func() any { return new(sampleMsg) }, nil, nil, true},
		{"empty", "", newAny, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			err = Unmarshal(b, tt.into(), 1<<20)
			if err == nil {
				t.Fatalf("Unmarshal(%s) = nil, want an error", tt.hex)
			}
			if !strings.HasPrefix(err.Error(), "wire: ") {
				t.Errorf("error %q lacks the wire: prefix", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Unmarshal(%s) = %v, want %v", tt.hex, err, tt.is)
			}
			if tt.as != nil && !errors.As(err, tt.as) {
				t.Errorf("Unmarshal(%s) = %v (%T), want a %T", tt.hex, err, errors.Unwrap(err), tt.as)
			}
		})
	}
}

func newAny() any     { return new(any) }
func newStrict() any  { return new(strict) }
func newOrdered() any { return new(ordered) }

func TestUnmarshalSizeCap(t *testing.T) {
	b, err := Marshal(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	var m sampleMsg
	if err := Unmarshal(b, &m, len(b)); err != nil {
		t.Fatalf("at the cap: %v", err)
	}
	if err := Unmarshal(b, new(sampleMsg), len(b)-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte over the cap: %v, want ErrTooLarge", err)
	}
	if err := Unmarshal(b, new(sampleMsg), 0); err == nil || errors.Is(err, ErrTooLarge) {
		t.Errorf("zero cap: %v, want an invalid-cap error", err)
	}
}

// TestUnmarshalTrusted: what Unmarshal accepts, UnmarshalTrusted decodes
// to the same value; it keeps the size cap and the decoder's rules, and
// only skips the canonical check, so it is for data checked before.
func TestUnmarshalTrusted(t *testing.T) {
	b, err := Marshal(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	var strictly, trusted sampleMsg
	if err := Unmarshal(b, &strictly, len(b)); err != nil {
		t.Fatal(err)
	}
	if err := UnmarshalTrusted(b, &trusted, len(b)); err != nil || !reflect.DeepEqual(strictly, trusted) {
		t.Errorf("UnmarshalTrusted = %+v, %v; want %+v, as Unmarshal", trusted, err, strictly)
	}
	if err := UnmarshalTrusted(b, new(sampleMsg), len(b)-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte over the cap: %v, want ErrTooLarge", err)
	}
	dup, _ := hex.DecodeString("a2616101616102")
	if err := UnmarshalTrusted(dup, new(any), 1<<10); err == nil {
		t.Error("a duplicate key decoded")
	}
	notShortest, _ := hex.DecodeString("1817")
	var v any
	if err := UnmarshalTrusted(notShortest, &v, 1<<10); err != nil || v != uint64(23) {
		t.Errorf("a non-canonical int: %v, %v; want 23, the canonical check is Unmarshal's alone", v, err)
	}
}

// TestUnmarshalLargeNonCanonical: a message too large for a pooled
// re-encoding buffer is checked as strictly as a small one.
func TestUnmarshalLargeNonCanonical(t *testing.T) {
	body := bytes.Repeat([]byte{7}, 40<<10)
	canonical, err := Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := Unmarshal(canonical, &got, 1<<20); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("a canonical 40 KiB string: %v", err)
	}
	// The same string with its length in 4 bytes where 2 do.
	long := append([]byte{0x5a, 0, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	if err := Unmarshal(long, new([]byte), 1<<20); !errors.Is(err, ErrNonCanonical) {
		t.Errorf("a 40 KiB string with a long length: %v, want ErrNonCanonical", err)
	}
}

func TestMaxArrayElements(t *testing.T) {
	// A huge element count in a few bytes must be refused before it is
	// allocated.
	b, _ := hex.DecodeString("9a7fffffff")
	if err := Unmarshal(b, new(any), 1<<20); err == nil {
		t.Fatal("2^31-element array header accepted")
	}
	ok, err := Marshal(make([]bool, maxArrayElements))
	if err != nil {
		t.Fatal(err)
	}
	if err := Unmarshal(ok, new([]bool), len(ok)); err != nil {
		t.Errorf("array at the cap: %v", err)
	}
	over, err := Marshal(make([]bool, maxArrayElements+1))
	if err != nil {
		t.Fatal(err)
	}
	if err := Unmarshal(over, new([]bool), len(over)); err == nil {
		t.Error("array over the cap accepted")
	}
}

func TestMaxNestedLevels(t *testing.T) {
	at, _ := hex.DecodeString(strings.Repeat("81", maxNestedLevels) + "01")
	if err := Unmarshal(at, new(any), 100); err != nil {
		t.Errorf("%d levels: %v", maxNestedLevels, err)
	}
	over, _ := hex.DecodeString(strings.Repeat("81", maxNestedLevels+1) + "01")
	if err := Unmarshal(over, new(any), 100); err == nil {
		t.Errorf("%d levels accepted", maxNestedLevels+1)
	}
}

func TestMarshalRefusesTags(t *testing.T) {
	if _, err := Marshal(cbor.Tag{Number: 42, Content: []byte{0}}); err == nil {
		t.Error("Marshal of a tag succeeded")
	}
}
