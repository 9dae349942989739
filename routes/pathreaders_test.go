package routes

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// pathReaders lists the functions of the module that read a request's path
// without calling NormalizePath themselves, with why that is safe: none of
// them decides anything (routing, auth, scopes, which handler) by it.
// Functions that call NormalizePath need no entry.
var pathReaders = map[string]string{
	"strangler/gateway.go:logAccess":               "writes the path to the access log",
	"strangler/trace.go:startSpan":                 "records the path as a span attribute; decides nothing by it",
	"routes/request.go:WithPath":                   "puts a path that its caller normalised on a copy of the request",
	"strangler/ops/ops.go:WriteError":              "writes the path of a failed admin request to the log",
	"cmd/ficus/internal/demo/demo.go:Service":      "the demo's stand-in service prints the path it received",
	"strangler/auth/admin.go:Wrap":                 "logs the path of an admin change; it guards every path under /admin/ alike (by method, not path)",
	"cmd/ficus/edge.go:redirectServer":             "copies the request URI into the https redirect as it came; every path gets the same 308",
	"strangler/bench/floorproxy/main.go:ServeHTTP": "the benchmark floor forwards every path as it came to its one upstream; it decides nothing by it",
}

// Issue 8, item 5: every component that decides something by a request's
// path uses the one normaliser (NormalizePath; and matches with Matcher or
// Prefixes). This test finds every function in the module that reads a
// request path (x.URL.Path, x.URL.RawPath, x.URL.EscapedPath(),
// x.URL.Opaque, x.RequestURI) and requires that it calls NormalizePath or
// is listed in pathReaders. Echo routers (the IDP's endpoints) receive only
// requests that the front door sent them after deciding on the normalised
// path.
func TestEveryPathReaderUsesTheNormaliser(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	found := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != ".." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, "../"))
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			reads, normalises := scanPathUse(fn.Body)
			if reads == token.NoPos {
				continue
			}
			key := rel + ":" + fn.Name.Name
			found[key] = true
			if _, listed := pathReaders[key]; !listed && !normalises {
				t.Errorf("%s: %s reads a request path but neither calls routes.NormalizePath nor is listed in pathReaders. "+
					"Decide on routes.NormalizePath(r.URL.EscapedPath()) and match with routes.Matcher or routes.Prefixes; "+
					"if it decides nothing by the path, list it with the reason.", fset.Position(reads), fn.Name.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	for key := range pathReaders {
		if !found[key] {
			stale = append(stale, key)
		}
	}
	sort.Strings(stale)
	for _, key := range stale {
		t.Errorf("pathReaders lists %s, which no longer reads a request path: remove it", key)
	}
	if !found["strangler/gateway.go:ServeHTTP"] && !found["strangler/verify/sidecar.go:SidecarTLS"] {
		t.Fatalf("found none of the known path readers (%v): is the walk looking at the module?", found)
	}
}

// scanPathUse returns where body first reads a request path (NoPos if it
// does not) and whether it calls NormalizePath.
func scanPathUse(body *ast.BlockStmt) (reads token.Pos, normalises bool) {
	assigned := map[ast.Expr]bool{}
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			for _, lhs := range n.Lhs {
				assigned[lhs] = true
			}
		case *ast.CallExpr:
			if id := calleeName(n.Fun); id == "NormalizePath" {
				normalises = true
			}
		case *ast.SelectorExpr:
			if assigned[n] || !readsPath(n) {
				return true
			}
			if reads == token.NoPos {
				reads = n.Pos()
			}
		}
		return true
	})
	return reads, normalises
}

func calleeName(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

// readsPath reports whether s is x.URL.Path, x.URL.RawPath,
// x.URL.EscapedPath, x.URL.Opaque or x.RequestURI.
func readsPath(s *ast.SelectorExpr) bool {
	switch s.Sel.Name {
	case "RequestURI":
		return true
	case "Path", "RawPath", "EscapedPath", "Opaque":
		inner, ok := s.X.(*ast.SelectorExpr)
		return ok && inner.Sel.Name == "URL"
	}
	return false
}
