using Tabula.Boot;

// PID 1 never returns from Main: ProofOfLife.Run reports failures, then powers off.
return ProofOfLife.Run(args);
