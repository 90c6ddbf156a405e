"""spark-submit entry point of the nightly revenue job; all logic lives in lib/growth_revenue."""

import sys

from growth_revenue.cli import main

if __name__ == "__main__":
    sys.exit(main())
