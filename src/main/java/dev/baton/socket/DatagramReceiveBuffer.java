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
 * so the worker's buffer is free again by then (a datagram held during a takeover is copied out
 * too); should anything else still hold part of it, reads take a fresh buffer instead.
 */
public final class DatagramReceiveBuffer extends DefaultMaxMessagesRecvByteBufAllocator {
    private final int slotSize;
    private final int maxSlots;
    private final FastThreadLocal<ByteBuf> buffers = new FastThreadLocal<>() {
        @Override
        protected void onRemoval(ByteBuf b) {
            b.release();
        }
    };

    /**
     * @param slotSize     bytes per datagram: the largest one
     * @param maxSlots     datagrams per read: 1 for recvmsg, more for recvmmsg (the epoll
     *                     transport reads with recvmmsg when a read offers room for several)
     * @param readsPerWake datagrams per readiness event before the batch is handed on
     */
    public DatagramReceiveBuffer(int slotSize, int maxSlots, int readsPerWake) {
        super(readsPerWake);
        this.slotSize = slotSize;
        this.maxSlots = maxSlots;
    }

    @Override
    public Handle newHandle() {
        return new MaxMessageHandle() {
            /**
             * Slots offered to the next recvmmsg: twice what the last one filled, at least 2 (a
             * single slot would make it a recvmsg, which cannot tell whether more are waiting).
             * Request/response traffic fills one slot per wake-up and is offered 2; a burst
             * grows the offer to the maximum.
             */
            private int slots = Math.min(2, maxSlots);

            @Override
            public ByteBuf allocate(ByteBufAllocator alloc) {
                ByteBuf b = buffers.get();
                if (b == null || b.refCnt() != 1) {
                    if (b != null) {
                        b.release(); // its other holders free it
                    }
                    b = alloc.directBuffer(slotSize * maxSlots, slotSize * maxSlots);
                    buffers.set(b);
                }
                return b.retainedSlice(0, slots * slotSize).clear();
            }

            @Override
            public void lastBytesRead(int bytes) {
                super.lastBytesRead(bytes);
                if (maxSlots > 1 && bytes > 0) {
                    slots = Math.max(2, Math.min(maxSlots, 2 * (bytes / slotSize)));
                }
            }

            /** A recvmmsg that filled fewer slots than offered found the socket empty: the next read would not. */
            @Override
            public boolean continueReading(UncheckedBooleanSupplier maybeMoreData) {
                return super.continueReading(maybeMoreData) && (maxSlots == 1 || lastBytesRead() == attemptedBytesRead());
            }

            @Override
            public int guess() {
                return slots * slotSize;
            }
        };
    }
}
