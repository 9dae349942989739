package idp

// SetHashHook makes p report every argon2id run it makes: +KiB of the
// hash's memory cost when the run starts, -KiB when it ends. The hook may
// block to hold a run. Set it before any traffic.
func SetHashHook(p *Provider, f func(deltaKiB int64)) { p.hashes.hook = f }
