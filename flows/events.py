"""Prefect events that nas emits for deployment triggers (see prefect.yaml)."""

from __future__ import annotations

import asyncio

DATASET_REGISTERED = "nas.dataset.registered"


def announce_dataset(name: str, config_path: str, data_root: str) -> str:
    """Emit `nas.dataset.registered` for resource `nas.dataset.<name>` and wait until the
    server has it; the payload is what the `pipeline-on-register` trigger passes on."""
    from prefect.events import Event
    from prefect.events.clients import get_events_client

    event = Event(event=DATASET_REGISTERED,
                  resource={"prefect.resource.id": f"nas.dataset.{name}", "prefect.resource.name": name},
                  payload={"config_path": config_path, "data_root": data_root})

    async def send() -> None:
        async with get_events_client() as client:
            await client.emit(event)

    asyncio.run(send())
    return str(event.id)
