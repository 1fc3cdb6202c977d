package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamRecord remembers the SSF stream setgate created or adopted for
// one issuer: its stream_id, in [LeaseBucket] beside the poll leases under
// the key "<stream>.ssf-stream.<issuer>", so every replica and every
// restart uses the same stream without listing the transmitter's (README
// "Adding an SSF transmitter"). It satisfies ssf.StreamMemory.
type StreamRecord struct {
	kv  jetstream.KeyValue
	key string
}

// StreamRecord returns the record of issuer (a configured issuer name),
// creating [LeaseBucket] if it does not exist.
func (b *Bridge) StreamRecord(ctx context.Context, issuer string) (*StreamRecord, error) {
	key := b.cfg.Stream + ".ssf-stream." + issuer
	if !validLeaseKey(key) {
		return nil, fmt.Errorf("bridge: stream record: issuer %q is not a valid key", issuer)
	}
	kv, err := b.leaseKV(ctx)
	if err != nil {
		return nil, err
	}
	return &StreamRecord{kv: kv, key: key}, nil
}

// Recall returns the remembered stream_id, "" when there is none.
func (r *StreamRecord) Recall(ctx context.Context) (string, error) {
	e, err := r.kv.Get(ctx, r.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("bridge: read stream record %q: %w", r.key, err)
	}
	return strings.TrimSpace(string(e.Value())), nil
}

// Remember stores id as the issuer's stream; "" forgets it.
func (r *StreamRecord) Remember(ctx context.Context, id string) error {
	var err error
	if id == "" {
		err = r.kv.Delete(ctx, r.key)
	} else {
		_, err = r.kv.Put(ctx, r.key, []byte(id))
	}
	if err != nil {
		return fmt.Errorf("bridge: write stream record %q: %w", r.key, err)
	}
	return nil
}

// leaseKV opens [LeaseBucket], creating it (History 1, file storage, the
// stream's replica count) when missing.
func (b *Bridge) leaseKV(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := b.js.KeyValue(ctx, LeaseBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      LeaseBucket,
			Description: "setgate poll leases and SSF stream records",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    b.cfg.StreamReplicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // created meanwhile by another replica
			kv, err = b.js.KeyValue(ctx, LeaseBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: lease bucket %q: %w", LeaseBucket, err)
	}
	return kv, nil
}
