"""A local, moto-backed AWS account for the tests, the demo and the benchmarks (never shipped to Lambda)."""
