package embedded

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5" // #nosec G501 -- for S3's ETag only
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"

	"github.com/johannesboyne/gofakes3"
)

// sealedMagic starts every object body sealedBackend stores; a change of
// format gets a new one.
var sealedMagic = []byte("DMSSE1")

const (
	sealNonceSize = 12 // AES-GCM's standard nonce
	sealTagSize   = 16
	// sealOverhead is what sealing adds to a body: the stored size of an
	// object is its size plus this, always.
	sealOverhead = 6 + sealNonceSize + sealTagSize
	// maxSealedObject bounds one object: it is sealed and opened whole in
	// memory.
	maxSealedObject = 1 << 30
	// metaPlainMD5 keeps the MD5 of an object's plaintext (its ETag, as S3
	// gives it for a single-part SSE-S3 upload) among the stored metadata;
	// it never reaches a client as a header.
	metaPlainMD5 = "X-Datamill-Plaintext-Md5"
)

// sealedBackend is a gofakes3 Backend whose object bodies are stored
// encrypted: AES-256-GCM under one key, a random nonce per object, the
// bucket and key as additional data (a body moved to another key does not
// open). Bodies are sealed and opened whole; a range is cut from the opened
// plaintext.
type sealedBackend struct {
	gofakes3.Backend
	aead cipher.AEAD
}

func newSealedBackend(inner gofakes3.Backend, key []byte) (*sealedBackend, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("s3 encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("s3 encryption key: %w", err)
	}
	return &sealedBackend{Backend: inner, aead: aead}, nil
}

func sealedAD(bucket, key string) []byte { return []byte(bucket + "/" + key) }

func (b *sealedBackend) seal(bucket, key string, plain []byte) ([]byte, error) {
	out := make([]byte, len(sealedMagic)+sealNonceSize, len(plain)+sealOverhead)
	copy(out, sealedMagic)
	nonce := out[len(sealedMagic):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce for %s/%s: %w", bucket, key, err)
	}
	return b.aead.Seal(out, nonce, plain, sealedAD(bucket, key)), nil
}

func (b *sealedBackend) open(bucket, key string, sealed []byte) ([]byte, error) {
	if len(sealed) < sealOverhead || !bytes.Equal(sealed[:len(sealedMagic)], sealedMagic) {
		return nil, fmt.Errorf("open %s/%s: not a sealed object", bucket, key)
	}
	nonce := sealed[len(sealedMagic) : len(sealedMagic)+sealNonceSize]
	plain, err := b.aead.Open(nil, nonce, sealed[len(sealedMagic)+sealNonceSize:], sealedAD(bucket, key))
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %w", bucket, key, err)
	}
	return plain, nil
}

// PutObject seals the body and stores it with its plaintext's MD5.
func (b *sealedBackend) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64,
	conditions *gofakes3.PutConditions,
) (gofakes3.PutObjectResult, error) {
	if size > maxSealedObject {
		return gofakes3.PutObjectResult{}, gofakes3.ErrorMessagef(gofakes3.ErrInvalidArgument,
			"object of %d bytes: at most %d here", size, maxSealedObject)
	}
	plain, err := gofakes3.ReadAll(input, size)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	sealed, err := b.seal(bucket, key, plain)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	sum := md5.Sum(plain) // #nosec G401 -- S3's ETag is the MD5 of the object, not a security check
	meta = maps.Clone(meta)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[metaPlainMD5] = hex.EncodeToString(sum[:])
	return b.Backend.PutObject(bucket, key, meta, bytes.NewReader(sealed), int64(len(sealed)), conditions)
}

// plainObject describes obj as its plaintext: size, ETag, metadata.
func plainObject(obj *gofakes3.Object) {
	obj.Size -= sealOverhead
	if sum, err := hex.DecodeString(obj.Metadata[metaPlainMD5]); err == nil && len(sum) == md5.Size {
		obj.Hash = sum
	}
	obj.Metadata = maps.Clone(obj.Metadata)
	delete(obj.Metadata, metaPlainMD5)
}

// GetObject opens the whole stored body and serves the range asked for.
func (b *sealedBackend) GetObject(bucket, key string, rangeRequest *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	obj, err := b.Backend.GetObject(bucket, key, nil)
	if err != nil {
		return nil, err
	}
	sealed, err := io.ReadAll(obj.Contents)
	_ = obj.Contents.Close() // read to the end or failed: the read's error is the one that matters
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", bucket, key, err)
	}
	plain, err := b.open(bucket, key, sealed)
	if err != nil {
		return nil, err
	}
	plainObject(obj)
	obj.Size = int64(len(plain))
	rnge, err := rangeRequest.Range(obj.Size)
	if err != nil {
		return nil, err
	}
	if rnge != nil {
		plain = plain[rnge.Start : rnge.Start+rnge.Length]
	}
	obj.Range = rnge
	obj.Contents = io.NopCloser(bytes.NewReader(plain))
	return obj, nil
}

// HeadObject describes the plaintext of the stored object.
func (b *sealedBackend) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	obj, err := b.Backend.HeadObject(bucket, key)
	if err != nil {
		return nil, err
	}
	plainObject(obj)
	return obj, nil
}

// ListBucket lists the plaintext sizes and ETags (MD5s), as HEAD and GET
// give them: clients such as DuckDB refuse an object whose ETag changed
// between the listing and the read. Each object listed is read for its
// plaintext's MD5.
func (b *sealedBackend) ListBucket(name string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	list, err := b.Backend.ListBucket(name, prefix, page)
	if err != nil {
		return nil, err
	}
	for _, c := range list.Contents {
		c.Size -= sealOverhead
		obj, err := b.Backend.HeadObject(name, c.Key)
		if err != nil {
			return nil, err
		}
		if sum := obj.Metadata[metaPlainMD5]; sum != "" {
			c.ETag = `"` + sum + `"`
		}
	}
	return list, nil
}

// CopyObject opens the source and seals it anew under the destination's key.
func (b *sealedBackend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	return gofakes3.CopyObject(b, srcBucket, srcKey, dstBucket, dstKey, meta)
}
