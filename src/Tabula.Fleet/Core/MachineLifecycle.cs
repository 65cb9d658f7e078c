namespace Tabula.Fleet.Core;

/// <summary>
/// The machine state machine. Staff actions:
/// <code>
///   provision: awaiting|provisioned          -> provisioned  (sets or changes the placement)
///   deploy:    provisioned|draining           -> deployed
///              awaiting, if provisioned before -> deployed     (staff approve a re-enrolled machine)
///   drain:     deployed                       -> draining
///   retire:    any but retired                -> retired      (final)
/// </code>
/// Enrollment (the machine itself, see <see cref="OnEnrollment"/>): a new identity starts awaiting; a known
/// identity whose booted package digest is allowed keeps its state; otherwise it waits (awaiting) and
/// remembers the state it had, which staff restore with deploy or provision.
/// </summary>
public static class MachineLifecycle
{
    public enum Action { Provision, Deploy, Drain, Retire }

    public static MachineState Apply(Machine machine, Action action)
    {
        var from = machine.State;
        MachineState? to = (action, from) switch
        {
            (_, MachineState.Retired) => null,
            (Action.Provision, MachineState.Awaiting or MachineState.Provisioned) => MachineState.Provisioned,
            (Action.Deploy, MachineState.Provisioned or MachineState.Draining) => MachineState.Deployed,
            (Action.Deploy, MachineState.Awaiting) when machine.Placement is not null => MachineState.Deployed,
            (Action.Drain, MachineState.Deployed) => MachineState.Draining,
            (Action.Retire, _) => MachineState.Retired,
            _ => null,
        };
        return to ?? throw new FleetException(FleetError.IllegalTransition,
            $"cannot {action.ToString().ToLowerInvariant()} a machine that is {from.Name()}" +
            (action == Action.Deploy && from == MachineState.Awaiting ? " and was never provisioned" : ""));
    }

    /// <summary>The state after (re-)enrollment of an existing machine.</summary>
    public static (MachineState State, MachineState? Previous) OnEnrollment(Machine existing, bool digestAllowed)
    {
        if (existing.State == MachineState.Retired)
            throw new FleetException(FleetError.Forbidden, "this machine is retired and may not enroll again");
        MachineState remembered = existing.State == MachineState.Awaiting ? existing.PreviousState ?? MachineState.Awaiting : existing.State;
        if (remembered == MachineState.Awaiting) return (MachineState.Awaiting, null);
        return digestAllowed ? (remembered, null) : (MachineState.Awaiting, remembered);
    }
}
