package dev.baton.socket;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.DefaultMaxMessagesRecvByteBufAllocator;
import io.netty.util.UncheckedBooleanSupplier;
import io.netty.util.concurrent.FastThreadLocal;

/**
 * How UDP sockets read: into one receive buffer per worker thread, reused read after read.
 * A datagram may be up to 64 KiB, so a read needs a buffer that size (a batch of reads with
 * recvmmsg, a multiple of it), yet most datagrams are small: allocating that buffer per read was
 * a pool-arena allocation per datagram, and a small datagram queued for sending pinned it whole.
 * The UDP handlers copy each datagram out (into a buffer of its own size) before the next read,
 * so the worker's buffer is free again by then; while anything else still holds part of it (a
 * datagram held during a takeover), reads take a fresh buffer instead.
 */
public final class DatagramReceiveBuffer extends DefaultMaxMessagesRecvByteBufAllocator {
    private final int size;
    private final boolean batched;
    private final FastThreadLocal<ByteBuf> buffers = new FastThreadLocal<>() {
        @Override
        protected void onRemoval(ByteBuf b) {
            b.release();
        }
    };

    /**
     * @param size         bytes per read (all slots of one recvmmsg)
     * @param readsPerWake datagrams per readiness event before the batch is handed on
     * @param batched      reads are recvmmsg: one that fills fewer slots than it offered found
     *                     the socket empty, so the next would only return EAGAIN
     */
    public DatagramReceiveBuffer(int size, int readsPerWake, boolean batched) {
        super(readsPerWake);
        this.size = size;
        this.batched = batched;
    }

    @Override
    public Handle newHandle() {
        return new MaxMessageHandle() {
            @Override
            public ByteBuf allocate(ByteBufAllocator alloc) {
                ByteBuf b = buffers.get();
                if (b == null || b.refCnt() != 1) {
                    if (b != null) {
                        b.release(); // its other holders free it
                    }
                    b = alloc.directBuffer(size, size);
                    buffers.set(b);
                }
                return b.retain().clear();
            }

            @Override
            public boolean continueReading(UncheckedBooleanSupplier maybeMoreData) {
                return super.continueReading(maybeMoreData) && (!batched || lastBytesRead() == attemptedBytesRead());
            }

            @Override
            public int guess() {
                return size;
            }
        };
    }
}
