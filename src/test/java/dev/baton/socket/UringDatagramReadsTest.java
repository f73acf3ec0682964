package dev.baton.socket;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.channel.RecvByteBufAllocator;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The slots an io_uring UDP listener's read is offered follow what the reads before it filled. */
class UringDatagramReadsTest {
    private static final int SLOT = 65536;

    /** Offers one read after another; {@code filled[i]} datagrams arrive in read i. Returns the slots offered. */
    private static List<Integer> offers(int... filled) {
        RecvByteBufAllocator.Handle h = new UringDatagramReads(SLOT, 8, 16).newHandle();
        List<Integer> out = new ArrayList<>();
        for (int f : filled) {
            ByteBuf b = h.allocate(UnpooledByteBufAllocator.DEFAULT);
            int slots = b.writableBytes() / SLOT;
            out.add(slots);
            assertEquals(slots * SLOT, h.guess(), "guess() says what allocate() gave");
            for (int i = 0; i < slots; i++) {
                h.lastBytesRead(i < f ? 64 : 0); // one completion per recvmsg: a datagram, or EAGAIN
            }
            b.release();
        }
        return out;
    }

    @Test
    void aBurstDoublesTheOfferUpToTheMaximum() {
        assertEquals(List.of(1, 2, 4, 8, 8, 8), offers(1, 2, 4, 8, 8, 8));
    }

    @Test
    void aReadThatFindsFewerThanOfferedShrinksTheOfferToWhatItFound() {
        assertEquals(List.of(1, 2, 4, 8, 8, 3, 1), offers(1, 2, 4, 8, 3, 1, 1));
    }

    /** Request/response: one datagram per wake-up alternates between one and two recvmsgs. */
    @Test
    void oneDatagramAtATimeCostsAtMostOneEmptyRecvmsgPerDatagram() {
        assertEquals(List.of(1, 2, 1, 2, 1, 2), offers(1, 1, 1, 1, 1, 1));
    }

    @Test
    void anEmptyReadOffersOne() {
        assertEquals(List.of(1, 1, 1, 2), offers(0, 0, 1, 2));
    }
}
