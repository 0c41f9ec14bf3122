package lint

import "github.com/fleetgate/fleetgate/internal/spec/yamlx"

// The read-only tree helpers are shared with package diff through yamlx;
// these names keep the rule code short.
type (
	loc   = yamlx.Loc
	tree  = yamlx.Tree
	entry = yamlx.Entry
)

var (
	deref          = yamlx.Deref
	entries        = yamlx.Entries
	items          = yamlx.Items
	str            = yamlx.Str
	isMap          = yamlx.IsMap
	isTrue         = yamlx.IsTrue
	child          = yamlx.Child
	newTree        = yamlx.NewTree
	elems          = yamlx.Elems
	fields         = yamlx.Fields
	templateNames  = yamlx.TemplateNames
	expandTemplate = yamlx.ExpandTemplate
)

const maxRefHops = yamlx.MaxRefHops
