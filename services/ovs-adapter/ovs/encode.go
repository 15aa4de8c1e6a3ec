package ovs

import (
	"encoding/json"
	"sort"
)

// op is one OVSDB transaction operation (RFC 7047 §5.2) in its JSON form;
// it satisfies go-openvswitch's ovsdb.TransactOp.
type op map[string]any

func (o op) MarshalJSON() ([]byte, error) { return json.Marshal(map[string]any(o)) }

// OVSDB's JSON encodings of sets, maps and uuids (RFC 7047 §5.1).
func set(elems ...any) []any { return []any{"set", nonNil(elems)} }

func ovsMap(m map[string]string) []any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]any, 0, len(m))
	for _, k := range keys {
		pairs = append(pairs, []any{k, m[k]})
	}
	return []any{"map", pairs}
}

func namedRef(name string) []any { return []any{"named-uuid", name} }
func uuidRef(id string) []any    { return []any{"uuid", id} }
func whereUUID(id string) []any  { return []any{[]any{"_uuid", "==", uuidRef(id)}} }

func uuidSetValue(ids []string) []any {
	refs := make([]any, len(ids))
	for i, id := range ids {
		refs[i] = uuidRef(id)
	}
	return set(refs...)
}

func nonNil(a []any) []any {
	if a == nil {
		return []any{}
	}
	return a
}

// guardAbsent fails the transaction if table has a row named name.
func guardAbsent(table, name string) op {
	return op{"op": "wait", "table": table, "where": []any{[]any{"name", "==", name}},
		"columns": []string{"name"}, "until": "==", "rows": []any{}, "timeout": 0}
}

// guardRows fails the transaction unless the row with uuid id has exactly
// rows in columns.
func guardRows(table, id string, columns []string, rows []any) op {
	return op{"op": "wait", "table": table, "where": whereUUID(id),
		"columns": columns, "until": "==", "rows": rows, "timeout": 0}
}

// Decoding of select results (values as encoding/json gives them).

func str(v any) string { s, _ := v.(string); return s }

// pair splits an OVSDB tagged value ["set", x], ["map", x], ["uuid", x].
func pair(v any) (string, any, bool) {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return "", nil, false
	}
	tag, ok := a[0].(string)
	return tag, a[1], ok
}

func uuidOf(v any) string {
	if tag, id, ok := pair(v); ok && tag == "uuid" {
		return str(id)
	}
	return ""
}

// uuidSet decodes a set of uuids; a one-element set is the bare atom.
func uuidSet(v any) []string {
	if id := uuidOf(v); id != "" {
		return []string{id}
	}
	tag, elems, ok := pair(v)
	if !ok || tag != "set" {
		return nil
	}
	var out []string
	for _, e := range elems.([]any) {
		if id := uuidOf(e); id != "" {
			out = append(out, id)
		}
	}
	return out
}

func strMap(v any) map[string]string {
	out := map[string]string{}
	tag, pairs, ok := pair(v)
	if !ok || tag != "map" {
		return out
	}
	for _, p := range pairs.([]any) {
		if kv, ok := p.([]any); ok && len(kv) == 2 {
			out[str(kv[0])] = str(kv[1])
		}
	}
	return out
}

// optInt decodes an integer or an optional integer (empty set: 0).
func optInt(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case []any:
		if tag, elems, ok := pair(x); ok && tag == "set" {
			if a, _ := elems.([]any); len(a) == 1 {
				return optInt(a[0])
			}
		}
	}
	return 0
}

// optStr decodes a string or an optional string (empty set: "").
func optStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		if tag, elems, ok := pair(x); ok && tag == "set" {
			if a, _ := elems.([]any); len(a) == 1 {
				return str(a[0])
			}
		}
	}
	return ""
}
