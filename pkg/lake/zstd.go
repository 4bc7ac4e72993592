package lake

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// zstdWindow is the window of the zstd encoder of a lake object's pages.
// A page is compressed on its own and is far smaller than zstd's default
// 8 MiB window, whose history buffers a new encoder allocates whole: about
// 32 MiB a writer, most of the sink's heap, for no better ratio.
const zstdWindow = 1 << 20

// zstdCodec is the zstd compression of one Writer's pages: one encoder,
// sized for pages, made with the writer and dropped with it. Readers
// decompress with parquet-go's own codec, chosen by the file's codec id.
type zstdCodec struct{ enc *zstd.Encoder }

func newZstdCodec() (*zstdCodec, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithLowerEncoderMem(true),
		zstd.WithZeroFrames(true),
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return &zstdCodec{enc: enc}, nil
}

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	return c.enc.EncodeAll(src, dst[:0]), nil
}

// Decode is not used by a Writer; it is there to be a whole codec.
func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	defer dec.Close()
	return dec.DecodeAll(src, dst[:0])
}
