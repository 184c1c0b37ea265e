#!/usr/bin/env python
"""[New] Peak memory and step time with and without --gradient_checkpointing (bert.benchmark_memory)."""

from bert import benchmark_memory

if __name__ == "__main__":
    benchmark_memory.main()
