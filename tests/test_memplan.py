"""The memory planner on hand-made programs: reuse, in place, 0-d feed cells, groups."""
from fastad.memplan import ALIGN, Storage, plan_memory


class Step:
    def __init__(self, out, reads=(), inplace=()):
        self.out, self.reads, self.inplace = out, list(reads), list(inplace)


def storages(*sizes, kind="temp"):
    return [Storage(i, n, kind) for i, n in enumerate(sizes)]


def overlap(a, b):
    return a.offset < b.offset + max(b.nbytes, 1) and b.offset < a.offset + max(a.nbytes, 1)


def test_a_buffer_is_reused_after_its_last_reader():
    a, b, c = storages(800, 800, 800)
    top = plan_memory([a, b, c], [Step(a), Step(b, [a]), Step(c, [b])])
    assert c.offset == a.offset and top == 2 * 832


def test_elementwise_writes_in_place_over_a_dying_input():
    a, b = storages(800, 800)
    plan_memory([a, b], [Step(a), Step(b, [a], inplace=[a])])
    assert b.offset == a.offset


def test_no_in_place_over_an_input_still_needed():
    a, b, c = storages(800, 800, 800)
    plan_memory([a, b, c], [Step(a), Step(b, [a], inplace=[a]), Step(c, [a, b])])
    assert not overlap(a, b)


def test_scalar_feed_cells_come_first_and_stay():
    cell, t1, t2 = Storage(0, 8, "scalar"), Storage(1, 64, "temp"), Storage(2, 64, "temp")
    plan_memory([cell, t1, t2], [Step(t1), Step(t2, [t1, cell])])
    assert cell.offset == 0 and not overlap(cell, t1) and not overlap(cell, t2)


def program(sizes):
    """big; small <- big; one <- small (one lands in big's freed block); then three
    whole-array steps reading `one` first: v1 <- one, v2 <- v1, v3 <- v2."""
    big, small, one, v1, v2, v3 = sts = storages(*sizes)
    steps = [Step(big), Step(small, [big]), Step(one, [small]),
             Step(v1, [one]), Step(v2, [v1]), Step(v3, [v2])]
    return sts, steps


def test_a_broadcast_operand_lives_until_its_group_ends():
    """A 1-element temp sitting in a big freed block, read by the first member of a
    block-by-block group, must not have its block handed to a later member: that member
    would overwrite it on block 0 while block 1 still reads it."""
    sizes = (8000, 8, 8, 8000, 8000, 8000)
    (big, _, one, *vs), steps = program(sizes)
    plan_memory([big, one, *vs], steps, groups=[(3, 6, 8000)])
    assert one.offset == big.offset
    assert not any(overlap(one, v) for v in vs)
    (big, _, one, *vs), steps = program(sizes)
    plan_memory([big, one, *vs], steps)  # without the group the block is fair game
    assert one.offset == big.offset and any(overlap(one, v) for v in vs)


def test_offsets_are_aligned():
    sts = storages(3, 17, 100, 1)
    plan_memory(sts, [Step(s) for s in sts] + [Step(sts[0], sts)])
    assert all(s.offset % ALIGN == 0 for s in sts)
