package io.netty.channel.epoll;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.channel.unix.FileDescriptor;
import io.netty.util.concurrent.FastThreadLocal;

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.Queue;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.BooleanSupplier;
import java.util.function.IntBinaryOperator;

/**
 * Zero-copy TCP relaying on epoll: bytes go from one socket to the other through a pipe with
 * splice(2), never through Java memory.
 *
 * <p>Each worker owns one pipe, and the pipe is empty between events: a read splices what the
 * source socket has into the pipe and at once from the pipe into the destination socket. What the
 * destination cannot take right now is read out of the pipe into an ordinary buffer and passed
 * down the source's pipeline as if it had been read normally, so it waits in the destination's
 * outbound buffer like any other bytes. Hence no descriptor per connection, nothing for an
 * upgrade handoff to drain, and FIN, backpressure and resets keep their ordinary path. A direction
 * splices only while the destination has nothing queued (order), and falls back to Netty's own
 * buffered read for that wake-up otherwise; {@link Direction#rearm()} after each read brings it back.
 *
 * <p>Netty 4.2.18's epoll transport is level-triggered, so stopping early loses nothing: what is
 * left is reported again. The hook is Netty's splice queue (the one its deprecated spliceTo uses,
 * whose end-of-stream handling can drop bytes that are still in the socket when the peer's FIN
 * arrives): while the queue's head task is there, the channel's read calls it instead of reading
 * into a buffer. After every call Netty shuts the input if the peer's FIN was seen, so after a FIN
 * a call reads everything up to the end before it returns. Lives in Netty's package for the
 * socket, the queue and the read handle; pinned to the Netty version in pom.xml like
 * {@link BatonEpollStreams}.
 */
public final class BatonSplice {
    /** Splices per wake-up before yielding to the worker's other channels (level-triggered: the rest is reported again). */
    private static final int MAX_ROUNDS = 8;
    private static final Field SPLICE_QUEUE = spliceQueueField();
    private static final LongAdder SPLICED = new LongAdder();
    private static final LongAdder COPIED = new LongAdder();

    private static volatile int pipeBytes = 256 * 1024;
    private static volatile IntBinaryOperator resizer = (fd, bytes) -> -1;

    private static final FastThreadLocal<WorkerPipe> PIPES = new FastThreadLocal<>() {
        @Override
        protected WorkerPipe initialValue() {
            return WorkerPipe.open();
        }

        @Override
        protected void onRemoval(WorkerPipe pipe) {
            pipe.close();
        }
    };

    private BatonSplice() {
    }

    /**
     * Pipe capacity wanted per worker, and how to set it (fcntl F_SETPIPE_SZ, which Netty does not
     * offer): {@code resize.applyAsInt(fd, bytes)} returns the capacity given or -1.
     */
    public static void configure(int bytes, IntBinaryOperator resize) {
        pipeBytes = bytes;
        resizer = resize;
    }

    /** Whether this Netty build has the hook (it does in the pinned version). */
    public static boolean available() {
        return SPLICE_QUEUE != null;
    }

    /** Bytes moved by splice since start, and bytes that had to be copied out of a pipe instead. */
    public static long splicedBytes() {
        return SPLICED.sum();
    }

    public static long copiedBytes() {
        return COPIED.sum();
    }

    /**
     * From now on, reads of {@code from} splice into {@code to} while {@code allowed} says so (when
     * it says no, for example during a handoff, reads fall back to buffers). Both must be epoll
     * stream channels on the same worker; call on that worker. Returns null where splicing cannot
     * be used (the channels then keep their buffered reads).
     */
    public static Direction start(Channel from, Channel to, BooleanSupplier allowed) {
        if (SPLICE_QUEUE == null || !(from instanceof AbstractEpollStreamChannel s)
                || !(to instanceof AbstractEpollStreamChannel d) || from.eventLoop() != to.eventLoop()) {
            return null;
        }
        ArrayDeque<AbstractEpollStreamChannel.SpliceInTask> queue = new ArrayDeque<>(2);
        Direction dir = new Direction(s, d, allowed, queue);
        try {
            SPLICE_QUEUE.set(s, queue);
        } catch (IllegalAccessException e) {
            return null;
        }
        dir.rearm();
        return dir;
    }

    /**
     * One direction of one connection: the task Netty's read calls while it heads the queue (its
     * abstract method is package-private, hence this class here).
     */
    public static final class Direction extends AbstractEpollStreamChannel.SpliceInTask {
        private final AbstractEpollStreamChannel source;
        private final AbstractEpollStreamChannel destination;
        private final BooleanSupplier allowed;
        private final Queue<AbstractEpollStreamChannel.SpliceInTask> queue;
        private boolean queued;

        private Direction(AbstractEpollStreamChannel s, AbstractEpollStreamChannel d, BooleanSupplier allowed,
                          Queue<AbstractEpollStreamChannel.SpliceInTask> queue) {
            // Netty fails the task's promise when the channel closes: the unsafe's void promise
            // ignores that, and no promise is allocated per direction.
            s.super(Integer.MAX_VALUE, s.unsafe().voidPromise());
            this.source = s;
            this.destination = d;
            this.allowed = allowed;
            this.queue = queue;
        }

        /** Splice again from the next read on, if an earlier one fell back to buffers. Call on the worker. */
        public void rearm() {
            if (!queued && source.isOpen()) {
                queued = true;
                queue.add(this);
            }
        }

        /**
         * Called by Netty's read in place of a buffered read. Returns true to leave the queue (this
         * wake-up then reads into buffers), false when this wake-up's reading is done.
         */
        @Override
        boolean spliceIn(RecvByteBufAllocator.Handle handle) {
            boolean toEnd = ((EpollRecvByteAllocatorHandle) handle).isReceivedRdHup();
            WorkerPipe pipe = PIPES.get();
            if (!spliceable() || pipe.broken) {
                if (toEnd) {
                    readToEnd(); // Netty shuts the input as soon as this returns
                    return false;
                }
                return fallBack(handle);
            }
            int sourceFd = source.socket.intValue();
            for (int round = 1; ; round++) {
                int in;
                try {
                    in = Native.splice(sourceFd, -1, pipe.write.intValue(), -1, pipe.capacity);
                } catch (IOException e) {
                    source.pipeline().fireExceptionCaught(e); // nothing entered the pipe
                    return false;
                }
                if (in == 0) {
                    if (toEnd) {
                        ended(); // the end, not "nothing yet": the FIN was seen and everything before it read
                    }
                    return false;
                }
                int out = 0;
                if (spliceable()) {
                    try {
                        out = Native.splice(pipe.read.intValue(), -1, destination.socket.intValue(), -1, in);
                    } catch (IOException e) {
                        pipe.discard(source.alloc(), in);
                        destination.pipeline().fireExceptionCaught(e);
                        return false;
                    }
                }
                SPLICED.add(out);
                if (out < in) {
                    // The destination is full (or has bytes queued): the rest leaves the worker's pipe
                    // now and waits in the destination's outbound buffer; this source reads again
                    // when the relay lets it.
                    ByteBuf rest = pipe.take(source.alloc(), in - out);
                    COPIED.add(in - out);
                    source.pipeline().fireChannelRead(rest);
                    if (!toEnd) {
                        return false;
                    }
                } else if (!toEnd && (in < pipe.capacity || round == MAX_ROUNDS)) {
                    return false; // probably all there was; level-triggered epoll reports any rest
                }
                if (!source.isOpen()) {
                    return false;
                }
            }
        }

        /** After the peer's FIN: everything still in the socket, into buffers and down the pipeline. */
        private void readToEnd() {
            RecvByteBufAllocator.Handle handle = source.unsafe().recvBufAllocHandle();
            for (;;) {
                ByteBuf b = handle.allocate(source.alloc());
                int n;
                try {
                    n = source.doReadBytes(b);
                } catch (Exception e) {
                    b.release();
                    source.pipeline().fireExceptionCaught(e);
                    return;
                }
                if (n <= 0) {
                    b.release();
                    if (n < 0) {
                        ended();
                    }
                    return;
                }
                source.pipeline().fireChannelRead(b);
                if (!source.isOpen()) {
                    return;
                }
            }
        }

        /**
         * The source's input is at its end: shut it as Netty's own read does when it reads the end,
         * which also takes the socket out of epoll's read interest. (Netty's call after a splice
         * task shuts the input without that, and level-triggered epoll would then report the
         * ended socket as readable again and again until the other direction closes.)
         */
        private void ended() {
            ((AbstractEpollChannel.AbstractEpollUnsafe) source.unsafe()).shutdownInput(true);
        }

        private boolean spliceable() {
            if (!allowed.getAsBoolean() || !destination.isActive() || destination.isOutputShutdown()) {
                return false;
            }
            // Nothing queued, flushed or not: isEmpty() alone counts only flushed messages, and a rest
            // copied earlier in this read is written but not yet flushed.
            ChannelOutboundBuffer ob = destination.unsafe().outboundBuffer();
            return ob != null && ob.isEmpty() && ob.totalPendingWriteBytes() == 0;
        }

        /**
         * Leaves the queue so that this wake-up reads into buffers. Netty goes on reading only if
         * the last read looked full, so record a "full" one-byte read.
         */
        private boolean fallBack(RecvByteBufAllocator.Handle handle) {
            queued = false;
            handle.attemptedBytesRead(1);
            handle.lastBytesRead(1);
            return true;
        }
    }

    /** A worker's pipe: empty whenever its worker is not inside a read. */
    private static final class WorkerPipe {
        final FileDescriptor read;
        final FileDescriptor write;
        final int capacity;
        /** No pipe, or one that went out of step: this worker copies from then on. */
        boolean broken;

        private WorkerPipe(FileDescriptor read, FileDescriptor write, int capacity, boolean broken) {
            this.read = read;
            this.write = write;
            this.capacity = capacity;
            this.broken = broken;
        }

        static WorkerPipe open() {
            try {
                FileDescriptor[] p = FileDescriptor.pipe();
                int given = resizer.applyAsInt(p[1].intValue(), pipeBytes);
                return new WorkerPipe(p[0], p[1], given > 0 ? given : 64 * 1024, false);
            } catch (IOException e) {
                return new WorkerPipe(null, null, 0, true); // out of descriptors: this worker copies
            }
        }

        /** The next {@code len} bytes of the pipe, in a buffer. */
        ByteBuf take(ByteBufAllocator alloc, int len) {
            ByteBuf b = alloc.directBuffer(len);
            try {
                while (len > 0) {
                    ByteBuffer nio = b.internalNioBuffer(b.writerIndex(), len);
                    int n = read.read(nio, nio.position(), nio.limit());
                    if (n <= 0) {
                        throw new IOException("pipe returned " + n + " with " + len + " bytes in it");
                    }
                    b.writerIndex(b.writerIndex() + n);
                    len -= n;
                }
                return b;
            } catch (IOException e) {
                // Bytes left behind would end up in another connection's stream: never use it again.
                b.release();
                close();
                broken = true;
                throw new IllegalStateException("splice pipe out of step; this worker stops splicing", e);
            }
        }

        void discard(ByteBufAllocator alloc, int len) {
            take(alloc, len).release();
        }

        void close() {
            if (broken) {
                return;
            }
            try {
                read.close();
                write.close();
            } catch (IOException ignored) {
                // process is ending this worker anyway
            }
        }
    }

    private static Field spliceQueueField() {
        try {
            Field f = AbstractEpollStreamChannel.class.getDeclaredField("spliceQueue");
            f.setAccessible(true);
            return f;
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }
}
