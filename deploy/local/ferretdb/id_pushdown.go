// Added to FerretDB v1.24.2's SQLite backend by nq-tracker's provisioning (deploy/local/provision.py).
//
// Upstream pushes a filter down to SQLite only when it is exactly {_id: <string or ObjectId>}, and
// then compares an expression the _id index does not carry, so every lookup, update and delete by
// _id reads the whole table. With the expression fixed in metadata.IDColumn, this narrows any
// filter holding an _id equality or an _id $in of strings/ObjectIds to those rows, through the
// index. It only narrows what is read: the handler still applies the whole filter in Go.

package sqlite

import (
	"fmt"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// idWhere returns a WHERE clause and its arguments selecting the rows the filter's _id condition
// allows, or "" when the filter has no such condition.
func idWhere(filter *types.Document) (string, []any) {
	if filter == nil {
		return "", nil
	}

	v, err := filter.Get("_id")
	if err != nil {
		return "", nil
	}

	if key, ok := idKey(v); ok {
		return fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn), []any{key}
	}

	cond, ok := v.(*types.Document)
	if !ok || cond.Len() != 1 {
		return "", nil
	}

	in, err := cond.Get("$in")
	if err != nil {
		return "", nil
	}

	values, ok := in.(*types.Array)
	if !ok || values.Len() == 0 || values.Len() > 10000 {
		return "", nil
	}

	args := make([]any, values.Len())
	placeholders := make([]string, values.Len())

	for i := 0; i < values.Len(); i++ {
		key, ok := idKey(must.NotFail(values.Get(i)))
		if !ok {
			return "", nil
		}

		args[i] = key
		placeholders[i] = "?"
	}

	return fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, strings.Join(placeholders, ", ")), args
}

func idKey(v any) (string, bool) {
	switch v.(type) {
	case string, types.ObjectID:
		return string(must.NotFail(sjson.MarshalSingleValue(v))), true
	default:
		return "", false
	}
}
