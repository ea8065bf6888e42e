package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// cborSeeds are real encodings and near misses for the CBOR fuzzers.
func cborSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, v := range []any{
		sample(f), strict{Must: 5, Name: "n"}, map[string]any{"a": []any{uint64(1), "x", []byte{2}}},
		int64(-1), 1.5, true, nil, []byte{}, "",
	} {
		b, err := Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, h := range []string{"1817", "a2616202616101", "9f01ff", "a2616101616102", "0100", "f7", "c11a5f5e1000", "fa3f800000"} {
		b, _ := hex.DecodeString(h)
		seeds = append(seeds, b)
	}
	return seeds
}

func FuzzUnmarshalAny(f *testing.F) {
	for _, s := range cborSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if err := Unmarshal(data, &v, 1<<16); err != nil {
			return
		}
		again, err := Marshal(v)
		if err != nil {
			t.Fatalf("accepted %x but cannot re-encode it: %v", data, err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted %x, which re-encodes to %x", data, again)
		}
	})
}

func FuzzUnmarshalSample(f *testing.F) {
	for _, s := range cborSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var trusted sampleMsg
		trustedErr := UnmarshalTrusted(data, &trusted, 1<<16)
		var v sampleMsg
		if err := Unmarshal(data, &v, 1<<16); err != nil {
			return
		}
		if trustedErr != nil || !reflect.DeepEqual(v, trusted) {
			t.Fatalf("UnmarshalTrusted of canonical %x: %+v, %v; want %+v", data, trusted, trustedErr, v)
		}
		again, err := Marshal(v)
		if err != nil {
			t.Fatalf("accepted %x but cannot re-encode it: %v", data, err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted %x, which re-encodes to %x", data, again)
		}
		var w sampleMsg
		if err := Unmarshal(again, &w, len(again)); err != nil || !reflect.DeepEqual(v, w) {
			t.Fatalf("second decode differs: %v", err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	env, _ := sealSample(f, testKey(f, 1))
	f.Add(env)
	secp, _, err := crypto.GenerateKeyPairWithReader(crypto.Secp256k1, 0, constReader(3))
	if err != nil {
		f.Fatal(err)
	}
	secpEnv, _ := sealSample(f, secp)
	f.Add(secpEnv)
	small, err := Seal(testKey(f, 2), testDomain, []byte{0xa0})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	f.Add(append(bytes.Clone(env), 6<<3|2, 1, 0))
	f.Add(env[:len(env)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, signer, err := Open(data, testDomain, 1<<16)
		if err != nil {
			if payload != nil || signer != "" {
				t.Fatalf("Open failed (%v) but returned %x, %q", err, payload, signer)
			}
			return
		}
		// Whatever we accept, libp2p accepts the same way...
		ref, refSigner, err := libp2pOpen(data)
		if err != nil {
			t.Fatalf("Open accepted %x, libp2p refuses it: %v", data, err)
		}
		if !bytes.Equal(ref, payload) || refSigner != signer {
			t.Fatalf("Open and libp2p disagree: %x from %s, %x from %s", payload, signer, ref, refSigner)
		}
		// ...and it is the one canonical encoding of its fields.
		e, err := parseEnvelope(data)
		if err != nil || !bytes.Equal(encodeEnvelope(e), data) {
			t.Fatalf("accepted envelope %x is not canonical", data)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	for _, m := range [][]byte{{}, []byte("hello"), bytes.Repeat([]byte{1}, 200)} {
		if err := writeFrame(&buf, m); err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.Clone(buf.Bytes()), uint16(300))
		buf.Reset()
	}
	f.Add(binary.AppendUvarint(nil, 1<<40), uint16(1000))
	f.Add([]byte{0x80, 0x00}, uint16(10))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, uint16(10))
	f.Add([]byte{5, 1, 2}, uint16(10))
	f.Fuzz(func(t *testing.T, data []byte, capHint uint16) {
		maxSize := int(capHint) + 1
		r := bytes.NewReader(data)
		msg, err := ReadFrame(memStream{Reader: r}, maxSize, time.Time{})
		if err != nil {
			if !errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, ErrBadFrame) && !errors.Is(err, io.EOF) {
				t.Fatalf("ReadFrame(%x) = %v, not one of the documented errors", data, err)
			}
			return
		}
		if len(msg) > maxSize {
			t.Fatalf("ReadFrame returned %d bytes over cap %d", len(msg), maxSize)
		}
		var again bytes.Buffer
		if err := writeFrame(&again, msg); err != nil {
			t.Fatal(err)
		}
		if consumed := data[:len(data)-r.Len()]; !bytes.Equal(again.Bytes(), consumed) {
			t.Fatalf("read %x as a frame, which writes as %x", consumed, again.Bytes())
		}
	})
}
