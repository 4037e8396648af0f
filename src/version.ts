/** The software version, reported in $SRV.INFO and by `goddb --version`. */
export const goddbVersion = '0.1.0';
