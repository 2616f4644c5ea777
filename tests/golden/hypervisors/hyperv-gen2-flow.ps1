# --- step 1 ---
$PSVersionTable.PSVersion.Major | ConvertTo-Json
# --- step 2 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $out = @{ Generation = $vm.Generation }
    $out.Dvd = @(Get-VMDvdDrive -VM $vm | Select-Object @{n='ControllerType'; e={"$($_.ControllerType)"}}, ControllerNumber, ControllerLocation, Path)
    if ($vm.Generation -eq 2) {
        $out.BootOrder = @((Get-VMFirmware -VM $vm).BootOrder | Select-Object FirmwarePath, Description)
    } else {
        $out.StartupOrder = @((Get-VMBios -VM $vm).StartupOrder | ForEach-Object { "$_" })
    }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 3 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $iso = Add-VMDvdDrive -VM $vm -Path '\\files\vmtailor\vmtailor\web01\vmtailor.iso' -Passthru
    $cfg = Add-VMDvdDrive -VM $vm -Path '\\files\vmtailor\vmtailor\web01\config.iso' -Passthru
    Set-VMFirmware -VM $vm -FirstBootDevice $iso
    $out = @{ ok = $true }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 4 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    Start-VM -VM $vm
    $out = @{ ok = $true }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 5 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $out = @{ State = "$($vm.State)" }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 6 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $out = @{ State = "$($vm.State)" }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 7 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $out = @{ State = "$($vm.State)" }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
# --- step 8 ---
$ErrorActionPreference = 'Stop'
try {
    $vm = Get-VM -Name 'web01' -ErrorAction SilentlyContinue
    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }
    $known = @('SCSI:0:1')
    $ours = @(Get-VMDvdDrive -VM $vm | Where-Object {
        $known -notcontains ('{0}:{1}:{2}' -f $_.ControllerType, $_.ControllerNumber, $_.ControllerLocation)
    })
    $ours | Remove-VMDvdDrive
    $paths = @('\AcpiEx(VMBus,0,0)\VenHw(9B17E5A2-0891-42DD-B653-80B5C22809BA,D96361BAA104294DB60572E2FFB1DC7F5A2E6C0F23C2D0429FBDB6F7D3E80CD5)\Scsi(0,0)', '\AcpiEx(VMBus,0,0)\VenHw(9B17E5A2-0891-42DD-B653-80B5C22809BA,D96361BAA104294DB60572E2FFB1DC7F5A2E6C0F23C2D0429FBDB6F7D3E80CD5)\Scsi(0,1)', '\AcpiEx(VMBus,0,0)\VenHw(9B17E5A2-0891-42DD-B653-80B5C22809BA,D96361BAA104294DB60572E2FFB1DC7F5A2E6C0F23C2D0429FBDB6F7D3E80CD5)\MAC(00155D010203)')
    $entries = @{}
    foreach ($b in (Get-VMFirmware -VM $vm).BootOrder) { $entries[$b.FirmwarePath] = $b }
    $order = @($paths | ForEach-Object { $entries[$_] } | Where-Object { $_ })
    if ($order.Count -ne $paths.Count) { throw 'a saved boot entry is gone' }
    Set-VMFirmware -VM $vm -BootOrder $order
    $out = @{ removed = $ours.Count }
    $out | ConvertTo-Json -Compress -Depth 4
} catch {
    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress
}
