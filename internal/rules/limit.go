package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/types/direction"
	"gopkg.in/yaml.v3"
)

// Limit is the rate brake of an ingress rule (the limit key): a peer
// that opens more than Conns new connections through the rule within
// Per is dropped until fewer than Conns of its attempts fall within the
// last Per, as ufw's limit (iptables' recent match) does. Attempts that
// were dropped count too, so a peer that keeps hammering stays out.
type Limit struct {
	Conns int
	Per   time.Duration
}

// Limits' bounds and ufw's defaults.
const (
	// MaxLimitConns is the largest conns: the kernel's recent match keeps
	// at most 20 timestamps a peer (ip_pkt_list_tot), and so does fwd.
	MaxLimitConns = 20
	// DefaultLimitConns and DefaultLimitPer are ufw's limit: 6 in 30 s.
	DefaultLimitConns = 6
	DefaultLimitPer   = 30 * time.Second
	// MinLimitPer and MaxLimitPer bound per.
	MinLimitPer = time.Second
	MaxLimitPer = 24 * time.Hour
)

// DefaultLimit is ufw's limit, the one fwctl limit writes.
func DefaultLimit() *Limit { return &Limit{Conns: DefaultLimitConns, Per: DefaultLimitPer} }

// String is the limit as the rules file writes it: "6/30s".
func (l Limit) String() string { return strconv.Itoa(l.Conns) + "/" + FormatLimitPer(l.Per) }

// FormatLimitPer writes a window the way ParseLimitPer reads it: "30s",
// "2m", "1h30m".
func FormatLimitPer(d time.Duration) string {
	s := d.String() // "30s", "2m0s", "1h0m0s", "1h30m0s"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// CheckLimit checks a limit's bounds; the error names what is wrong.
func CheckLimit(l Limit) error {
	if l.Conns < 1 || l.Conns > MaxLimitConns {
		return fmt.Errorf("limit conns %d out of range: expected 1-%d", l.Conns, MaxLimitConns)
	}
	if l.Per < MinLimitPer || l.Per > MaxLimitPer {
		return fmt.Errorf("limit per %s out of range: expected 1s to 24h", FormatLimitPer(l.Per))
	}
	if l.Per%time.Second != 0 {
		return fmt.Errorf("limit per %s: expected whole seconds", l.Per)
	}
	return nil
}

// ParseLimitPer reads a window: a Go duration of whole seconds ("30s",
// "2m", "1h").
func ParseLimitPer(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("bad limit per %q: expected a duration such as 30s, 2m or 1h", clip(s))
	}
	return d, nil
}

// limit decodes the limit key of a rule: {conns: N, per: DURATION}.
// On an egress rule it is an error: a limit brakes peers that connect to
// the host.
func (d *decoder) limit(k, v *yaml.Node, dir direction.Dir) *Limit {
	if dir == direction.Egress {
		d.errorf(k, "limit on an egress rule: limit brakes peers that connect to the host, only ingress rules take it")
		return nil
	}
	if v.Kind != yaml.MappingNode {
		d.errorf(v, "limit: expected a mapping {conns: N, per: DURATION} such as {conns: 6, per: 30s}, got %s", kindName(v))
		return nil
	}
	var conns, per *yaml.Node
	d.fields(v, "limit", []string{"conns", "per"}, func(key string, _, val *yaml.Node) {
		if key == "conns" {
			conns = val
		} else {
			per = val
		}
	})
	if conns == nil || per == nil {
		d.errorf(v, "limit without conns or per: expected {conns: N, per: DURATION} such as {conns: %d, per: 30s}", DefaultLimitConns)
		return nil
	}
	l := &Limit{}
	n, ok := d.intValue(conns, "limit conns")
	if !ok {
		return nil
	}
	if n < 1 || n > MaxLimitConns {
		d.errorf(conns, "limit conns %d out of range: expected 1-%d", n, MaxLimitConns)
		return nil
	}
	l.Conns = int(n)
	s, ok := d.scalar(per, "limit per", "a duration such as 30s")
	if !ok {
		return nil
	}
	p, err := ParseLimitPer(s)
	if err != nil {
		d.errorf(per, "%v", err)
		return nil
	}
	l.Per = p
	if err := CheckLimit(*l); err != nil {
		d.errorf(per, "%v", err)
		return nil
	}
	return l
}

// limitNode is the YAML of a limit, in flow style.
func limitNode(l *Limit) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	m.Content = append(m.Content, str("conns"), num(l.Conns), str("per"), &yaml.Node{Kind: yaml.ScalarNode, Value: FormatLimitPer(l.Per)})
	return m
}

// egressLimit refuses the limit key of an egress rule with its own
// error and returns the rule's mapping without it, so the rest of the
// rule is still checked.
func (d *decoder) egressLimit(n *yaml.Node) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "limit" {
			d.limit(k, n.Content[i+1], direction.Egress)
			c := *n
			c.Content = append(n.Content[:i:i], n.Content[i+2:]...)
			return &c
		}
	}
	return n
}
