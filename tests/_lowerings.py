"""Count the programs JAX lowers while a function runs (jax.monitoring events): counts, not seconds, so a test of
"no recompilation" does not depend on the machine's load."""

LOWERING_EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"


def lowerings(fn) -> int:
    """How many programs JAX lowers to MLIR while ``fn()`` runs."""
    import jax.monitoring as jm

    events, recording = [], [True]

    def listener(name, duration, **kw):
        if recording[0] and name == LOWERING_EVENT:
            events.append(name)

    jm.register_event_duration_secs_listener(listener)
    try:
        fn()
    finally:
        recording[0] = False   # older JAX (the declared minimum) has no way to unregister a listener
        if hasattr(jm, "unregister_event_duration_listener"):
            jm.unregister_event_duration_listener(listener)
    return len(events)
