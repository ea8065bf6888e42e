package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// ErrUnknownKey is returned by Set and ApplyEnv for a key or ARO_* variable
// that names no config key.
var ErrUnknownKey = errors.New("config: unknown key")

// EnvPrefix starts every environment variable the node reads.
const EnvPrefix = "ARO_"

// Keys returns every config key in file order, e.g. "api.addr" and
// "limits.peer_conns". Each can be given to Set, as ARO_* variable and as a
// flag.
func Keys() []string {
	var keys []string
	walk(reflect.TypeFor[Config](), "", nil, func(key string, _ []int) {
		keys = append(keys, key)
	})
	return keys
}

// EnvVar returns the environment variable that overrides key:
// "limits.peer_conns" is ARO_LIMITS_PEER_CONNS.
func EnvVar(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Set overrides one key from its text form. A list ("listen", "roles", ...)
// is comma-separated, and an empty value makes it empty. Set checks only
// that the value has the key's type; Validate checks the rest.
func (c *Config) Set(key, value string) error {
	index, ok := fieldIndex(key)
	if !ok {
		want := "one of " + strings.Join(Keys(), ", ")
		if near := closestKey(key); near != "" {
			want = near
		}
		return &explained{ErrUnknownKey, fmt.Sprintf("config: unknown key %q: want %s", key, want)}
	}
	f := reflect.ValueOf(c).Elem().FieldByIndex(index)
	if err := setText(f, value); err != nil {
		return &FieldError{Key: key, Value: value, Want: describe(f.Type())}
	}
	return nil
}

// ApplyEnv applies every ARO_* variable in environ (as os.Environ returns
// it) with Set. ARO_DATADIR is not a config key and is skipped; any other
// ARO_* variable that names no key is an error, so a misspelt override is
// never silently ignored. All errors are returned together.
func (c *Config) ApplyEnv(environ []string) error {
	byVar := make(map[string]string)
	for _, key := range Keys() {
		byVar[EnvVar(key)] = key
	}
	var errs []error
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || name == EnvDatadir {
			continue
		}
		key, ok := byVar[name]
		if !ok {
			errs = append(errs, &explained{ErrUnknownKey, fmt.Sprintf(
				"config: unknown environment variable %s: ARO_<KEY> sets a config key (ARO_LOG_LEVEL sets log.level); fix its name or unset it",
				name)})
			continue
		}
		if err := c.Set(key, value); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				fe.Source = name
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// walk calls fn for every leaf field of the struct type t with its dotted
// TOML key and its index for FieldByIndex.
func walk(t reflect.Type, prefix string, index []int, fn func(key string, index []int)) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
			walk(f.Type, prefix+name+".", idx, fn)
			continue
		}
		fn(prefix+name, idx)
	}
}

func fieldIndex(key string) ([]int, bool) {
	var found []int
	walk(reflect.TypeFor[Config](), "", nil, func(k string, index []int) {
		if k == key {
			found = index
		}
	})
	return found, found != nil
}

// keyType returns the Go type of the field behind key.
func keyType(key string) (reflect.Type, bool) {
	index, ok := fieldIndex(key)
	if !ok {
		return nil, false
	}
	return reflect.TypeFor[Config]().FieldByIndex(index).Type, true
}

// setText parses s into the field f.
func setText(f reflect.Value, s string) error {
	if u, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetInt(v)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v, err := strconv.ParseUint(strings.TrimSpace(s), 10, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetUint(v)
	case reflect.Bool:
		v, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		f.SetBool(v)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type %s", f.Type())
		}
		list := reflect.MakeSlice(f.Type(), 0, strings.Count(s, ",")+1)
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = reflect.Append(list, reflect.ValueOf(item).Convert(f.Type().Elem()))
			}
		}
		f.Set(list)
	default:
		// A new field of another kind needs a case here; TestSetEveryKey
		// catches it.
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}
