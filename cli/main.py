"""Root command group: ``eventkit [-v|-q] COMMAND``."""
import click

@click.group()
def cli() -> None:
    """eventkit: neuromorphic datasets to frames, caches and spiking networks."""
