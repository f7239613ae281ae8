"""The `gateway` command (and `python -m gateway`).

Kept free of imports on purpose: multiprocessing re-imports the program's main module in every
ingest worker, and importing the CLI (web framework, ORM, protocol servers) there would cost
each worker most of a CPU-second and tens of megabytes it never uses.
"""


def run() -> None:
    from gateway.cli import main  # late on purpose, see above

    main()


if __name__ == "__main__":
    run()
