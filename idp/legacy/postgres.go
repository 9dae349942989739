package legacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/routes"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SQLConfig is a read-only query on the legacy database.
type SQLConfig struct {
	// Query selects the user whose username is $1, in at most one row,
	// with the columns id and password_hash, optionally username (the
	// legacy spelling), customer_number and enabled (boolean: false
	// refuses the login); every other column is a profile claim of its
	// name. Required.
	Query string `yaml:"query"`
	// HashFormats are the formats password_hash may hold: bcrypt,
	// django_pbkdf2_sha256. A stored hash in another format fails the
	// login with 503 and a logged error. Required.
	HashFormats []string `yaml:"hash_formats"`
	// StatementTimeout bounds the query on the server. Default 5s.
	StatementTimeout routes.Duration `yaml:"statement_timeout"`
	// MaxConns bounds the pool. Default 4.
	MaxConns int32 `yaml:"max_conns"`
}

// Check checks c without connecting: the query's form and the hash
// formats. The error lists every problem, one a line, each starting with
// the key it is about.
func (c SQLConfig) Check() error {
	var errs []string
	if !strings.Contains(c.Query, "$1") {
		errs = append(errs, "query: must select by the username as $1")
	}
	if strings.Contains(c.Query, "$2") {
		errs = append(errs, "query: takes one parameter, $1 (the username)")
	}
	if _, err := newVerifier(c.HashFormats); err != nil {
		errs = append(errs, err.Error())
	}
	if c.StatementTimeout < 0 {
		errs = append(errs, "statement_timeout: must not be negative")
	}
	if c.MaxConns < 0 || c.MaxConns > 100 {
		errs = append(errs, fmt.Sprintf("max_conns: must be 0 (the default, 4) to 100 (got %d)", c.MaxConns))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// The columns Postgres reads by name; any other is a claim.
const (
	colID       = "id"
	colHash     = "password_hash"
	colUsername = "username"
	colCustomer = "customer_number"
	colEnabled  = "enabled"
)

// Postgres checks credentials with a read-only query on the legacy
// database and verifies the stored hash. Its sessions are read-only
// (default_transaction_read_only) with a statement timeout. Safe for
// concurrent use.
type Postgres struct {
	cfg     SQLConfig
	pool    *pgxpool.Pool
	hashes  *verifier
	log     *slog.Logger
	checked atomic.Bool // the query's columns were found right
}

var _ idp.LegacyUsers = (*Postgres)(nil)

// NewPostgres returns a checker on the legacy database at dsn (a
// PostgreSQL URL or key=value string). It does not connect: call Check
// at start to find a wrong query early; CheckLegacy checks the columns
// on first use when Check could not. Close it.
func NewPostgres(dsn string, c SQLConfig, log *slog.Logger) (*Postgres, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	v, _ := newVerifier(c.HashFormats)
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("dsn: not a PostgreSQL URL or key=value string") // the error may hold the password
	}
	pc.MaxConns = c.MaxConns
	if pc.MaxConns == 0 {
		pc.MaxConns = 4
	}
	timeout := c.StatementTimeout.Std(5 * time.Second)
	pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	pc.ConnConfig.RuntimeParams["application_name"] = "ficus-legacy-login"
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("legacy database: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Postgres{cfg: c, pool: pool, hashes: v, log: log}, nil
}

// Close closes the pool.
func (p *Postgres) Close() { p.pool.Close() }

// ErrColumns means the query's columns are not what Postgres reads: a
// configuration error, not an outage.
var ErrColumns = errors.New("query")

// Check describes the query on the legacy database (without running it)
// and checks its columns: id and password_hash present, no name twice,
// enabled boolean. ErrColumns (wrapped) names what is wrong; any other
// error means the database could not be asked.
func (p *Postgres) Check(ctx context.Context) error {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("legacy database: %w", err)
	}
	defer conn.Release()
	sd, err := conn.Conn().PgConn().Prepare(ctx, "", p.cfg.Query, nil)
	if err != nil {
		if conn.Conn().PgConn().IsClosed() {
			return fmt.Errorf("legacy database: %w", err)
		}
		return fmt.Errorf("%w: the legacy database refuses it: %v", ErrColumns, err)
	}
	if len(sd.ParamOIDs) != 1 {
		return fmt.Errorf("%w: takes %d parameters; it must take one, $1 (the username)", ErrColumns, len(sd.ParamOIDs))
	}
	var names []string
	for _, f := range sd.Fields {
		if slices.Contains(names, f.Name) {
			return fmt.Errorf("%w: the column %s comes twice", ErrColumns, f.Name)
		}
		names = append(names, f.Name)
		if f.Name == colEnabled && f.DataTypeOID != pgtype.BoolOID {
			return fmt.Errorf("%w: the column enabled must be boolean", ErrColumns)
		}
	}
	for _, want := range []string{colID, colHash} {
		if !slices.Contains(names, want) {
			return fmt.Errorf("%w: no column %s (it returns %s)", ErrColumns, want, strings.Join(names, ", "))
		}
	}
	p.checked.Store(true)
	return nil
}

// CheckLegacy implements idp.LegacyUsers.
func (p *Postgres) CheckLegacy(ctx context.Context, username, password string) (*idp.LegacyUser, error) {
	if !p.checked.Load() {
		if err := p.Check(ctx); err != nil {
			if errors.Is(err, ErrColumns) {
				p.log.Error("legacy login: the configured query is wrong", "error", err.Error())
			}
			return nil, err
		}
	}
	rows, err := p.pool.Query(ctx, p.cfg.Query, username)
	if err != nil {
		return nil, fmt.Errorf("legacy database: %w", err)
	}
	var row map[string]any
	n := 0
	for rows.Next() {
		if n++; n > 1 {
			break
		}
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("legacy database: %w", err)
		}
		row = make(map[string]any, len(vals))
		for i, f := range rows.FieldDescriptions() {
			row[f.Name] = vals[i]
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("legacy database: %w", err)
	}
	if n > 1 {
		return nil, errors.New("legacy database: the query returned more than one row for a username")
	}
	if row == nil {
		p.hashes.burn(password)
		return nil, fmt.Errorf("%w: no such user", idp.ErrLegacyDenied)
	}
	stored, _ := row[colHash].(string)
	ok, err := p.hashes.verify(stored, password)
	if err != nil {
		p.log.Error("legacy login: a user's password hash cannot be checked", "legacy_user_id", text(row[colID]), "error", err.Error())
		return nil, fmt.Errorf("legacy database: %w", err)
	}
	if enabled, isBool := row[colEnabled].(bool); isBool && !enabled || !ok {
		return nil, fmt.Errorf("%w: wrong password or disabled", idp.ErrLegacyDenied)
	}
	u := &idp.LegacyUser{ID: text(row[colID]), Username: text(row[colUsername]), CustomerNumber: text(row[colCustomer])}
	for k, v := range row {
		switch k {
		case colID, colHash, colUsername, colCustomer, colEnabled:
			continue
		}
		if v = claim(v); v != nil {
			if u.Claims == nil {
				u.Claims = map[string]any{}
			}
			u.Claims[k] = v
		}
	}
	return u, nil
}

// text is a column's value as a string ("" for NULL).
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case [16]byte: // uuid
		return pgtype.UUID{Bytes: v, Valid: true}.String()
	}
	return fmt.Sprint(v)
}

// claim is a column's value as a JSON claim: strings, numbers and
// booleans as they are, times in RFC 3339, NULL left out, others as text.
func claim(v any) any {
	switch v := v.(type) {
	case nil:
		return nil
	case string, bool, int16, int32, int64, float32, float64:
		return v
	case time.Time:
		return v.UTC().Format(time.RFC3339)
	}
	return text(v)
}
