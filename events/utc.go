package events

import (
	"reflect"
	"time"
)

var timeType = reflect.TypeFor[time.Time]()

// TimesInUTC sets every time.Time that *ptr holds (in exported fields,
// through pointers, slices and maps) to UTC, where the log's times are:
// msgpack decodes times in the local time zone, and a state restored from
// a snapshot must print its times as the same state folded from the log
// does.
func TimesInUTC(ptr any) {
	inUTC(reflect.ValueOf(ptr).Elem())
}

func inUTC(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				inUTC(v.Field(i))
			}
		}
	case reflect.Pointer:
		if !v.IsNil() {
			inUTC(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			inUTC(v.Index(i))
		}
	case reflect.Map:
		for _, key := range v.MapKeys() {
			// Map values cannot be set in place: a copy, set back.
			elem := reflect.New(v.Type().Elem()).Elem()
			elem.Set(v.MapIndex(key))
			inUTC(elem)
			v.SetMapIndex(key, elem)
		}
	}
}
